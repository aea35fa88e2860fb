// Markdown as people type it in chat apps: CommonMark + GitHub's extensions (fenced code,
// lists, quotes, headings, tables, strikethrough) by marked, vendored in vendor/; its HTML
// goes through DOMPurify (vendored too) before it reaches the page. marked does not sanitise,
// DOMPurify does nothing else: together they replace a hand-written subset that showed most
// of markdown raw. Links: only http(s) and mailto, opened in a new tab without referrer, their
// real target in the title, and spelled out next to the text when the text looks like a
// different address (`[https://bank.example](https://evil.example)`). Images in markdown are
// not loaded (a tracking pixel would tell a stranger who read what): they become links.
"use strict";
(function () {
  const md = new window.marked.Marked({ gfm: true, breaks: true, async: false });
  const purify = window.DOMPurify;
  const ALLOWED = ["p", "br", "strong", "em", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td", "span", "input"];

  function safeUrl(u) {
    try {
      const url = new URL(u); // absolute addresses only
      return ["http:", "https:", "mailto:"].includes(url.protocol) ? url : null;
    } catch (_) {
      return null;
    }
  }
  // Text that looks like an address (with or without a scheme): its host.
  function hostIn(text) {
    const m = String(text).trim().match(/^(?:[a-z][a-z0-9+.-]*:\/\/)?([a-z0-9-]+(?:\.[a-z0-9-]+)+)(?:[:/?#]\S*)?$/i);
    return m ? m[1].toLowerCase() : null;
  }

  purify.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A") {
      const url = safeUrl(node.getAttribute("href") || "");
      if (!url) {
        node.removeAttribute("href");
        return;
      }
      node.setAttribute("href", url.href);
      node.setAttribute("title", url.href);
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
      const claimed = hostIn(node.textContent);
      if (url.protocol !== "mailto:" && claimed && claimed !== url.hostname.toLowerCase()) {
        node.classList.add("deceptive");
        node.dataset.realHost = url.hostname;
      }
    }
    if (node.tagName === "INPUT" && node.getAttribute("type") !== "checkbox") node.remove();
    if (node.tagName === "INPUT") node.setAttribute("disabled", "");
  });

  // images in markdown become a link to the image
  const renderer = {
    image({ href, text }) {
      const url = safeUrl(href);
      if (!url) return purify.sanitize(text || "");
      const label = text || url.href;
      return `<a href="${url.href.replace(/"/g, "&quot;")}">${label.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`)}</a>`;
    },
    html({ text }) {
      // raw HTML in a message is text, never markup
      return text.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
    },
  };
  md.use({ renderer });

  window.renderMarkdown = function (text) {
    const html = md.parse(String(text));
    const frag = purify.sanitize(html, { ALLOWED_TAGS: ALLOWED, ALLOWED_ATTR: ["href", "title", "type", "checked", "disabled", "start", "align"], RETURN_DOM_FRAGMENT: true });
    // a link whose text names another host says where it really goes
    for (const a of frag.querySelectorAll("a.deceptive")) {
      const real = document.createElement("span");
      real.className = "real-target";
      real.textContent = " (" + a.dataset.realHost + ")";
      a.after(real);
    }
    return frag;
  };
})();
