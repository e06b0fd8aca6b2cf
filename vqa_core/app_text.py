"""The app's static text (English and Arabic, for ``gr.I18n``), its CSS and its page script.

Kept out of ``app.py`` so the wiring stays short. The script runs once in the browser when
the page loads: it marks the answer line as an ``aria-live`` region, turns the high-contrast
mode on and off, reads answers aloud with the browser's speech synthesis, sets the page
direction for Arabic, and in kiosk mode resets the page after a spell of inactivity.
"""

from __future__ import annotations

__all__ = ["TRANSLATIONS", "page_css", "page_js"]

TRANSLATIONS: dict[str, dict[str, str]] = {
    "en": {
        "title": "# Visual question answering, side by side\n"
        "Add a picture, ask a question about it, and compare two models' answers.",
        "image": "Image (upload, camera or paste)",
        "question": "Question (press Enter to ask)",
        "question_placeholder": "e.g. What colour is the shape?",
        "top_k": "How many ViLT answers to show",
        "advanced": "Advanced: BLIP-2 decoding",
        "max_new_tokens": "BLIP-2 max new tokens",
        "beams": "BLIP-2 beams (1 = greedy)",
        "ask": "Ask",
        "start_over": "Start over",
        "vilt_heading": "## ViLT (picks from a fixed list)",
        "vilt_label": "ViLT's top answers with scores",
        "blip2_heading": "## BLIP-2 (writes its own answer)",
        "blip2_label": "BLIP-2's answer",
        "read_aloud": "Read answers aloud",
        "stop_reading": "Stop reading",
        "auto_read": "Read new answers aloud automatically",
        "accessible_toggle": "High contrast and large text",
        "examples": "Examples: click one to try it",
        "about": "About these models",
    },
    "ar": {
        "title": "# الإجابة عن أسئلة حول الصور، جنبًا إلى جنب\n"
        "أضف صورة، واطرح سؤالًا عنها، وقارن بين إجابتَي نموذجين.",
        "image": "الصورة (رفع أو كاميرا أو لصق)",
        "question": "السؤال (اضغط Enter للسؤال)",
        "question_placeholder": "مثال: ما لون الشكل؟",
        "top_k": "عدد إجابات ViLT المعروضة",
        "advanced": "خيارات متقدمة: توليد BLIP-2",
        "max_new_tokens": "أقصى عدد من الرموز الجديدة لـ BLIP-2",
        "beams": "عدد الحزم في BLIP-2 (1 = جشع)",
        "ask": "اسأل",
        "start_over": "ابدأ من جديد",
        "vilt_heading": "## ViLT (يختار من قائمة ثابتة)",
        "vilt_label": "أفضل إجابات ViLT مع الدرجات",
        "blip2_heading": "## BLIP-2 (يكتب إجابته بنفسه)",
        "blip2_label": "إجابة BLIP-2",
        "read_aloud": "اقرأ الإجابات بصوت عالٍ",
        "stop_reading": "أوقف القراءة",
        "auto_read": "اقرأ الإجابات الجديدة تلقائيًا",
        "accessible_toggle": "تباين عالٍ ونص كبير",
        "examples": "أمثلة: انقر على أحدها لتجربته",
        "about": "عن هذه النماذج",
    },
}

# High contrast: white on black, yellow for focus and accents (WCAG AAA ratios), every
# surface Gradio themes, including the hover, table (examples) and dark variants that a
# naive override leaves white-on-white.
_ACCESSIBLE_VARS = """
  --body-background-fill: #000; --background-fill-primary: #000;
  --background-fill-secondary: #000; --block-background-fill: #000;
  --panel-background-fill: #000; --body-text-color: #fff; --body-text-color-subdued: #fff;
  --block-label-text-color: #fff; --block-title-text-color: #fff; --block-info-text-color: #fff;
  --block-label-background-fill: #000; --block-title-background-fill: #000;
  --block-border-color: #fff; --border-color-primary: #fff; --border-color-accent: #ff0;
  --block-border-width: 2px; --color-accent: #ff0; --color-accent-soft: #222;
  --input-background-fill: #000; --input-background-fill-focus: #000;
  --input-border-color: #fff; --input-border-color-focus: #ff0; --input-border-width: 2px;
  --input-placeholder-color: #ddd; --link-text-color: #ff0; --link-text-color-hover: #ff0;
  --link-text-color-visited: #ff0; --link-text-color-active: #ff0;
  --button-primary-background-fill: #ff0; --button-primary-background-fill-hover: #fff;
  --button-primary-text-color: #000; --button-primary-text-color-hover: #000;
  --button-primary-border-color: #ff0; --button-primary-border-color-hover: #fff;
  --button-secondary-background-fill: #000; --button-secondary-background-fill-hover: #333;
  --button-secondary-text-color: #fff; --button-secondary-text-color-hover: #ff0;
  --button-secondary-border-color: #fff; --button-secondary-border-color-hover: #ff0;
  --button-border-width: 2px;
  --table-even-background-fill: #000; --table-odd-background-fill: #111;
  --table-row-focus: #333; --table-border-color: #fff; --table-text-color: #fff;
  --checkbox-background-color: #000; --checkbox-background-color-selected: #ff0;
  --checkbox-border-color: #fff; --checkbox-border-color-selected: #ff0;
  --checkbox-label-background-fill: #000; --checkbox-label-background-fill-hover: #333;
  --checkbox-label-background-fill-selected: #000; --checkbox-label-text-color: #fff;
  --checkbox-label-text-color-selected: #fff; --slider-color: #ff0;
  --accordion-text-color: #fff; --loader-color: #ff0;
  --stat-background-fill: #ff0; --code-background-fill: #222; --shadow-drop: none; --shadow-drop-lg: none;
  --error-background-fill: #000; --error-text-color: #fff; --error-border-color: #ff0;
  --text-xxs: 16px; --text-xs: 17px; --text-sm: 19px; --text-md: 22px; --text-lg: 26px;
  --text-xl: 30px; --text-xxl: 36px;
  --block-label-text-size: 20px; --block-title-text-size: 22px; --block-info-text-size: 20px;
  --input-text-size: 24px; --checkbox-label-text-size: 20px; --section-header-text-size: 22px;
  --button-large-text-size: 24px; --button-small-text-size: 20px; --prose-text-size: 22px;
"""


def page_css(*, kiosk: bool = False) -> str:
    css = f"""
/* Markup this project controls: keep contrast and focus visible in every mode. */
#vqa-agreement {{ font-size: 1.15em; min-height: 2.5em; }}
#vqa-vilt-status, #vqa-blip2-status {{ min-height: 1.5em; }}
.gradio-container :focus-visible {{ outline: 3px solid #1d4ed8; outline-offset: 2px; }}
body.vqa-accessible .gradio-container, body.vqa-accessible .gradio-container .dark {{
{_ACCESSIBLE_VARS}
}}
body.vqa-accessible, body.vqa-accessible .gradio-container {{ background: #000 !important; color: #fff; }}
body.vqa-accessible .gradio-container :focus-visible {{ outline: 4px solid #ff0; outline-offset: 3px; }}
body.vqa-accessible .gradio-container button:hover {{ text-decoration: underline; }}
body.vqa-accessible .gradio-container table tr:hover td,
body.vqa-accessible .gradio-container .gallery-item:hover,
body.vqa-accessible .gradio-container button.gallery-item {{ background: #000 !important; color: #fff !important; }}
body.vqa-accessible .gradio-container code, body.vqa-accessible .gradio-container pre {{ background: #222 !important; color: #fff !important; }}
body.vqa-accessible #vqa-examples td, body.vqa-accessible #vqa-examples th, body.vqa-accessible footer {{ font-size: 22px !important; }}
body.vqa-accessible .gradio-container .bar {{ background: #ff0 !important; }}
body.vqa-accessible .gradio-container .label, body.vqa-accessible .gradio-container .text {{ color: #fff !important; }}
html[dir="rtl"] .gradio-container {{ direction: rtl; text-align: right; }}
"""
    if kiosk:
        css += """
/* Kiosk: big touch targets, nothing that leads off the app. */
.gradio-container { max-width: 100% !important; }
#vqa-ask, #vqa-reset, #vqa-read, #vqa-stop { min-height: 64px; font-size: 1.3em; }
#vqa-question textarea { min-height: 56px; font-size: 1.3em; }
#vqa-auto-read input[type="checkbox"], #vqa-accessible-toggle input[type="checkbox"] { width: 28px; height: 28px; }
#vqa-examples tbody tr { min-height: 64px; }
footer { display: none !important; }
"""
    return css


def page_js(options_json: str) -> str:
    """The page script, given the app's options as a JSON object."""
    return (
        """
() => {
  const options = """
        + options_json
        + """;
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
"""
    )
