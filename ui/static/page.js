// The page script. Gradio runs it once when the page loads; ui/page.py calls it with the
// app's options ({kiosk, accessible, idleResetSeconds}). It marks the answer line as a live
// region, switches high contrast, reads answers aloud with the browser's speech synthesis,
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

  // Answers are announced when they change; the agreement line holds both answers.
  whenPresent("vqa-agreement", (el) => {
    el.setAttribute("aria-live", "polite");
    el.setAttribute("role", "status");
    el.setAttribute("aria-atomic", "true");
  });

  // Arabic (and other right-to-left locales Gradio may gain) read right to left.
  const lang = (navigator.language || "en").toLowerCase();
  if (lang.startsWith("ar")) {
    document.documentElement.setAttribute("dir", "rtl");
    document.documentElement.setAttribute("lang", "ar");
  } else if (!document.documentElement.getAttribute("lang")) {
    document.documentElement.setAttribute("lang", "en");
  }

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

  window.vqaSpeak = () => {
    if (!("speechSynthesis" in window)) return;
    const region = byId("vqa-agreement");
    const text = region ? region.innerText.trim() : "";
    if (!text) return;
    window.speechSynthesis.cancel();
    const utterance = new SpeechSynthesisUtterance(text);
    utterance.lang = document.documentElement.getAttribute("lang") || lang;
    window.speechSynthesis.speak(utterance);
  };
  window.vqaStopSpeaking = () => {
    if ("speechSynthesis" in window) window.speechSynthesis.cancel();
  };

  if (options.kiosk) {
    document.body.classList.add("vqa-kiosk");
    // Reset after idle seconds, but only if someone has touched the page since the last reset.
    let timer = null;
    let touched = false;
    const reset = () => {
      timer = null;
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
      if (timer) clearTimeout(timer);
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
