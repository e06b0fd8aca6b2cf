// The page script. Gradio runs it once when the page loads; ui/page.py calls it with the
// app's options ({kiosk, accessible, idleResetSeconds, noVoice, busy, ...}). It announces the
// finished photo-quality sentence and answer line once each, switches high contrast,
// reads answers aloud with the browser's speech synthesis in a voice for the page's language,
// sets the page direction for Arabic, and in kiosk mode resets the page after idle time.
(options) => {
  const byId = (id) => document.getElementById(id);
  const whenPresent = (id, then) => {
    const found = byId(id);
    if (found) { then(found); return; }
    const watcher = new MutationObserver(() => {
      const el = byId(id);
      if (el) { watcher.disconnect(); then(el); }
    });
    watcher.observe(document.body, { childList: true, subtree: true });
  };

  // One announcer says what a visitor must hear, once it is finished: the photo-quality
  // sentence when a picture arrives, then the answer line (which holds both answers). Gradio
  // puts a progress timer inside its outputs while they work; marking those outputs as live
  // regions made a screen reader hear every tick ("0.1s", "0.2s", ...).
  const announcer = document.createElement("div");
  announcer.id = "vqa-announcer";
  announcer.className = "vqa-announcer";
  announcer.setAttribute("role", "status");
  announcer.setAttribute("aria-live", "polite");
  announcer.setAttribute("aria-atomic", "true");
  document.body.appendChild(announcer);
  window.vqaAnnouncements = 0;
  window.vqaAnnounce = (text) => {
    if (!text || announcer.textContent === text) return;
    announcer.textContent = text;
    window.vqaAnnouncements += 1;
  };
  const finishedText = (el) => {
    if (!el || el.querySelector(".pending, .progress-text, .eta-bar") || el.closest(".pending")) return "";
    const copy = el.cloneNode(true);
    for (const part of copy.querySelectorAll(".progress-text, .meta-text, .meta-text-center, .timer, .eta-bar, [aria-hidden=true]")) part.remove();
    return copy.innerText.trim();
  };
  const announced = {};
  const watchFinished = (id) => whenPresent(id, (el) => {
    let quiet = null;
    new MutationObserver(() => {
      if (quiet) clearTimeout(quiet);
      // Announce only once the text has stopped changing.
      quiet = setTimeout(() => {
        const text = finishedText(el);
        if (text && text !== announced[id]) window.vqaAnnounce(text);
        announced[id] = text;
      }, 400);
    }).observe(el, { childList: true, subtree: true, characterData: true });
  });
  watchFinished("vqa-quality");
  watchFinished("vqa-framing");
  watchFinished("vqa-agreement");
  watchFinished("vqa-text-found");
  // The conversation reads in order as a list; it is not announced on its own (the answer
  // line already says the newest turn).
  whenPresent("vqa-conversation", (el) => {
    el.setAttribute("role", "log");
    el.setAttribute("aria-live", "off");
  });
  // After a picture is chosen, the keyboard's next stop is the question: the file chooser
  // otherwise leaves focus on the upload area, and a screen reader user must hunt for the box.
  // (Not on the kiosk: a focused box would raise an on-screen keyboard no one asked for.)
  if (!options.kiosk) {
    whenPresent("vqa-image", (area) => {
      area.addEventListener("change", (event) => {
        if (!(event.target instanceof HTMLInputElement) || event.target.type !== "file") return;
        const watcher = new MutationObserver(() => {
          if (!area.querySelector("img")) return;
          watcher.disconnect();
          const box = document.querySelector("#vqa-question textarea");
          if (box) box.focus();
        });
        watcher.observe(area, { childList: true, subtree: true });
      }, true);
    });
  }
  // A full queue: Gradio's client words its own toast in English ("This application is
  // currently busy...") whatever the page's language; the app's sentence replaces it.
  const GRADIO_BUSY = "This application is currently busy";
  const sayBusyInPageLanguage = (root) => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.nodeValue.includes(GRADIO_BUSY)) {
        const words = (options.queueFull || {})[pageBase()] || (options.queueFull || {}).en;
        if (words) node.nodeValue = words;
      }
    }
  };
  new MutationObserver((records) => {
    for (const record of records) {
      for (const added of record.addedNodes) {
        if (added.nodeType === Node.ELEMENT_NODE && added.textContent.includes(GRADIO_BUSY)) sayBusyInPageLanguage(added);
        else if (added.nodeType === Node.TEXT_NODE && added.nodeValue.includes(GRADIO_BUSY)) sayBusyInPageLanguage(added.parentNode);
      }
    }
  }).observe(document.body, { childList: true, subtree: true });
  // While the models work: a busy sentence, announced once, and on a narrow screen the
  // answers brought into view (they sit far below the question on a phone).
  window.vqaAsking = () => {
    const busy = (options.busy || {})[pageBase()] || (options.busy || {}).en || "";
    window.vqaAnnounce(busy);
    if (window.innerWidth < 768) {
      const answers = byId("vqa-answers");
      if (answers) answers.scrollIntoView({ block: "start" });
    }
  };

  // Arabic (and other right-to-left locales Gradio may gain) read right to left.
  const lang = (navigator.language || "en").toLowerCase();
  if (lang.startsWith("ar")) {
    document.documentElement.setAttribute("dir", "rtl");
    document.documentElement.setAttribute("lang", "ar");
  } else if (!document.documentElement.getAttribute("lang")) {
    document.documentElement.setAttribute("lang", "en");
  }

  // What a screen reader hears: the picture by name, Gradio's own controls in the page's
  // language, and none of the icons drawn inside named buttons or beside labels.
  const pageBase = () => (document.documentElement.getAttribute("lang") || "en").split("-")[0];
  const relabel = () => {
    const base = pageBase();
    const names = (options.gradioLabels || {})[base] || {};
    const prefixes = Object.keys(names).filter((key) => key.endsWith(" "));
    const app = document.querySelector(".gradio-container") || document.body;
    // Names and tooltips alike: a sighted visitor reads the tooltip a screen reader hears.
    for (const attribute of ["aria-label", "title"]) {
      for (const el of app.querySelectorAll(`[${attribute}]`)) {
        const name = el.getAttribute(attribute);
        if (names[name]) { el.setAttribute(attribute, names[name]); continue; }
        const prefix = prefixes.find((p) => name.startsWith(p));
        if (prefix) el.setAttribute(attribute, names[prefix] + name.slice(prefix.length));
      }
    }
    // The examples table's headers are plain text in Gradio (ui/sections.py).
    for (const cell of app.querySelectorAll("#vqa-examples th")) {
      const shown = cell.textContent.trim();
      if (names[shown]) {
        const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          if (node.textContent.trim() === shown) node.textContent = names[shown];
        }
      }
    }
    const imageLabel = names["Image (upload, camera or paste)"];
    if (imageLabel) {
      for (const el of app.querySelectorAll("#vqa-image [data-testid='block-label']")) {
        for (const node of el.childNodes) {
          if (node.nodeType === Node.TEXT_NODE && node.textContent.trim()) node.textContent = imageLabel;
        }
      }
    }
    // Gradio's placeholder for an empty answer is a plain div with a label ("Empty value"):
    // a label no role allows (axe: aria-prohibited-attr), on nothing worth announcing.
    for (const el of app.querySelectorAll("div.empty[aria-label]:not([role])")) el.removeAttribute("aria-label");
    // Gradio's timers and progress text change every tenth of a second: not for the ear.
    for (const el of app.querySelectorAll(".progress-text, .meta-text, .meta-text-center, .timer, .eta-bar")) {
      if (el.getAttribute("aria-hidden") !== "true") el.setAttribute("aria-hidden", "true");
    }
    // Gradio marks its blocks left to right, which overrode the Arabic page's direction:
    // inside every block the page's own direction wins (English words in it keep their
    // order by the bidirectional algorithm, and the messages isolate them).
    if (document.documentElement.dir === "rtl") {
      for (const el of app.querySelectorAll("[dir=ltr], textarea:not([dir]), input:not([dir])")) {
        el.setAttribute("dir", "rtl");
      }
    }
    for (const svg of app.querySelectorAll("svg:not([aria-hidden])")) {
      if (!svg.getAttribute("aria-label") && !svg.querySelector("title")) svg.setAttribute("aria-hidden", "true");
    }
    const alt = (options.pictureAlt || {})[base] || (options.pictureAlt || {}).en || "";
    for (const img of app.querySelectorAll("#vqa-image img")) {
      if (img.getAttribute("alt") !== alt) img.setAttribute("alt", alt);
    }
  };
  let relabelQueued = false;
  new MutationObserver(() => {
    if (relabelQueued) return;
    relabelQueued = true;
    requestAnimationFrame(() => { relabelQueued = false; relabel(); });
  }).observe(document.body, { childList: true, subtree: true, attributes: true, attributeFilter: ["aria-label", "title", "src", "dir"] });
  relabel();

  // The kiosk's ready-made questions: one tap puts it in the box and asks. The models read
  // English, so on a page in another language without translation the English one is asked.
  window.vqaQuickAsk = (number) => {
    const base = pageBase();
    const questions = options.quickQuestions || {};
    const shown = (questions[base] || [])[number - 1];
    const english = (questions.en || [])[number - 1];
    const question = base === "en" || options.translates ? shown || english : english;
    window.vqaAskText(question);
  };
  // A question tapped rather than typed: put in the box, then asked.
  window.vqaAskText = (question) => {
    const box = document.querySelector("#vqa-question textarea");
    if (!box || !question) return;
    box.value = question;
    box.dispatchEvent(new Event("input", { bubbles: true }));
    setTimeout(() => { const button = byId("vqa-ask"); if (button) button.click(); }, 100);
  };

  window.vqaSetAccessible = (on) => {
    document.body.classList.toggle("vqa-accessible", !!on);
    try { localStorage.setItem("vqa-accessible", on ? "1" : "0"); } catch (e) {}
  };
  let stored = null;
  try { stored = localStorage.getItem("vqa-accessible"); } catch (e) {}
  window.vqaSetAccessible(options.accessible || stored === "1");
  if (stored === "1" && !options.accessible) {
    whenPresent("vqa-accessible-toggle", (box) => {
      const input = box.querySelector("input[type=checkbox]");
      if (input && !input.checked) input.click();
    });
  }

  // A voice for the page's language (an Arabic voice on an Arabic page); when the browser
  // has none, a line under the speech buttons says so, in the page's language.
  const pageLanguage = () => (document.documentElement.getAttribute("lang") || lang).toLowerCase();
  window.vqaPickVoice = () => {
    const wanted = pageLanguage().split("-")[0];
    const voices = window.speechSynthesis.getVoices();
    const matching = voices.filter((v) => (v.lang || "").toLowerCase().split(/[-_]/)[0] === wanted);
    return matching.find((v) => v.localService) || matching[0] || null;
  };
  const sayVoiceMissing = (missing) => {
    const row = byId("vqa-speech");
    if (!row) return;
    let note = byId("vqa-speech-note");
    if (!missing) { if (note) note.remove(); return; }
    if (!note) {
      note = document.createElement("p");
      note.id = "vqa-speech-note";
      note.setAttribute("role", "status");
      row.insertAdjacentElement("afterend", note);
    }
    const notes = options.noVoice || {};
    note.textContent = notes[pageLanguage().split("-")[0]] || notes.en || "";
  };
  window.vqaSpeak = () => {
    if (!("speechSynthesis" in window)) return;
    // The photo-quality sentence first: it says how far to trust what follows.
    // Finished text only: a line still being worked on holds Gradio's timer, not words.
    const parts = ["vqa-quality", "vqa-framing", "vqa-agreement"]
      .map((id) => finishedText(byId(id)))
      .filter((part) => part);
    if (!parts.length) {
      // A button that does nothing reads as broken: say why there is nothing, and how to start.
      const nothing = (options.nothingToRead || {})[pageBase()] || (options.nothingToRead || {}).en || "";
      window.vqaAnnounce(nothing);
      parts.push(nothing);
    }
    window.speechSynthesis.cancel();
    const utterance = new SpeechSynthesisUtterance(parts.join(" "));
    utterance.lang = pageLanguage();
    const voice = window.vqaPickVoice();
    if (voice) utterance.voice = voice;
    sayVoiceMissing(!voice);
    window.speechSynthesis.speak(utterance);
  };
  // The text read in a picture, in a voice for the text's own language ("ar" or "en", from
  // the server), not the page's: an Arabic label on an English page is read in Arabic.
  window.vqaSpeakText = (id, language) => {
    if (!("speechSynthesis" in window)) return;
    const el = byId(id);
    const text = el ? el.innerText.trim() : "";
    if (!text) return;
    window.speechSynthesis.cancel();
    const utterance = new SpeechSynthesisUtterance(text);
    const wanted = (language || pageLanguage()).toLowerCase();
    utterance.lang = wanted;
    const voices = window.speechSynthesis.getVoices()
      .filter((v) => (v.lang || "").toLowerCase().split(/[-_]/)[0] === wanted.split("-")[0]);
    const voice = voices.find((v) => v.localService) || voices[0] || null;
    if (voice) utterance.voice = voice;
    window.vqaLastSpoken = { text, lang: utterance.lang };
    window.speechSynthesis.speak(utterance);
  };
  window.vqaStopSpeaking = () => {
    if ("speechSynthesis" in window) window.speechSynthesis.cancel();
  };

  if (options.kiosk) {
    document.body.classList.add("vqa-kiosk");
    // Reset after idle seconds, but only if someone has touched the page since the last reset.
    let timer = null;
    let warnTimer = null;
    let touched = false;
    // Before the reset, a warning shown and spoken with time left to keep the visit (WCAG
    // 2.2.1: at least 20 s, or half the idle time when that is shorter); one touch keeps it.
    const warningSeconds = Math.min(20, options.idleResetSeconds / 2);
    const warning = document.createElement("div");
    warning.id = "vqa-still-there";
    warning.setAttribute("role", "alertdialog");
    warning.setAttribute("aria-labelledby", "vqa-still-there-text");
    warning.hidden = true;
    const warningText = document.createElement("p");
    warningText.id = "vqa-still-there-text";
    const keep = document.createElement("button");
    keep.id = "vqa-keep-visit";
    keep.type = "button";
    warning.append(warningText, keep);
    document.body.appendChild(warning);
    const warn = () => {
      warnTimer = null;
      if (!touched) return;
      const words = (options.stillThere || {})[pageBase()] || (options.stillThere || {}).en || {};
      warningText.textContent = (words.text || "").replace("{seconds}", String(Math.round(warningSeconds)));
      keep.textContent = words.keep || "";
      warning.hidden = false;
      keep.focus();
      window.vqaAnnounce(warningText.textContent);
      if ("speechSynthesis" in window) {
        const utterance = new SpeechSynthesisUtterance(warningText.textContent);
        utterance.lang = pageLanguage();
        const voice = window.vqaPickVoice();
        if (voice) utterance.voice = voice;
        window.speechSynthesis.cancel();
        window.speechSynthesis.speak(utterance);
      }
    };
    const reset = () => {
      timer = null;
      warning.hidden = true;
      if (!touched) return;
      touched = false;
      window.vqaStopSpeaking();
      const button = byId("vqa-reset");
      if (button) button.click();
      // The next visitor starts from the kiosk's own display settings.
      const contrast = document.querySelector("#vqa-accessible-toggle input[type=checkbox]");
      if (contrast && contrast.checked !== !!options.accessible) contrast.click();
      const autoRead = document.querySelector("#vqa-auto-read input[type=checkbox]");
      if (autoRead && autoRead.checked) autoRead.click();
      window.scrollTo(0, 0);
    };
    const activity = () => {
      touched = true;
      if (!warning.hidden) {
        warning.hidden = true;
        window.vqaStopSpeaking();
      }
      if (timer) clearTimeout(timer);
      if (warnTimer) clearTimeout(warnTimer);
      warnTimer = setTimeout(warn, (options.idleResetSeconds - warningSeconds) * 1000);
      timer = setTimeout(reset, options.idleResetSeconds * 1000);
    };
    // A new answer arriving counts as activity for someone already using the page, so a
    // slow model's answer is not wiped the moment it lands.
    whenPresent("vqa-answers", (answers) => {
      new MutationObserver(() => { if (touched) activity(); })
        .observe(answers, { childList: true, subtree: true, characterData: true });
    });
    for (const name of ["pointerdown", "keydown", "input", "change", "wheel", "touchstart", "drop", "paste"]) {
      document.addEventListener(name, activity, { capture: true, passive: true });
    }
    window.vqaIdleReset = reset;
  }
}
