// A safe markdown subset: **bold**, *italic*, `code`, [text](http(s) link), bare links.
// Builds DOM nodes with textContent only: no HTML from a message is ever parsed.
"use strict";
(function () {
  const TOKEN = /`([^`\n]+)`|\*\*([^*\n]+)\*\*|\*([^*\n]+)\*|\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)|(https?:\/\/[^\s<]+[^\s<.,;:!?)"'])/g;

  function safeUrl(u) {
    try {
      const url = new URL(u);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  function link(text, href) {
    const url = safeUrl(href);
    if (!url) return document.createTextNode(text);
    const a = document.createElement("a");
    a.href = url;
    a.textContent = text;
    a.rel = "noopener noreferrer nofollow";
    a.target = "_blank";
    return a;
  }

  function el(tag, text) {
    const e = document.createElement(tag);
    e.textContent = text;
    return e;
  }

  function renderLine(line, parent) {
    let last = 0;
    TOKEN.lastIndex = 0;
    let m;
    while ((m = TOKEN.exec(line)) !== null) {
      if (m.index > last) parent.appendChild(document.createTextNode(line.slice(last, m.index)));
      if (m[1] !== undefined) parent.appendChild(el("code", m[1]));
      else if (m[2] !== undefined) parent.appendChild(el("strong", m[2]));
      else if (m[3] !== undefined) parent.appendChild(el("em", m[3]));
      else if (m[4] !== undefined) parent.appendChild(link(m[4], m[5]));
      else parent.appendChild(link(m[6], m[6]));
      last = TOKEN.lastIndex;
    }
    if (last < line.length) parent.appendChild(document.createTextNode(line.slice(last)));
  }

  window.renderMarkdown = function (text) {
    const frag = document.createDocumentFragment();
    String(text).split("\n").forEach((line, i) => {
      if (i > 0) frag.appendChild(document.createElement("br"));
      renderLine(line, frag);
    });
    return frag;
  };
})();
