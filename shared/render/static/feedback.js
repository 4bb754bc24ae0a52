// arxiv-bot: the "more like this" / "less like this" forms, in place. Without this script the
// same forms post and come back to the page; with it, the page stays where it is. Served as
// /static/feedback.js (CSP script-src 'self'); the published files never load it.
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!form.classList || !form.classList.contains("rate") || !window.fetch) {
    return;
  }
  event.preventDefault();
  var box = form.closest(".feedback");
  var status = box && box.querySelector(".rated");
  var button = form.querySelector("button");
  fetch(form.action, {
    method: "POST",
    body: new URLSearchParams(new FormData(form)),
    headers: { "Accept": "application/json" },
    credentials: "same-origin"
  }).then(function (response) {
    if (!response.ok) {
      throw new Error("HTTP " + response.status);
    }
    return response.json();
  }).then(function (data) {
    box.querySelectorAll("button").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
    button.setAttribute("aria-pressed", "true");
    if (status) {
      status.textContent = data.message;
    }
  }).catch(function () {
    form.submit();  // the plain form: the server answers (or explains the error) itself
  });
});
