// gridcollect console: a few conveniences on top of plain HTML forms (which work without it).
"use strict";
(function () {
  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }
  ready(function () {
    // "select all" in a queue
    var all = document.getElementById("select-all");
    if (all) {
      all.addEventListener("change", function () {
        document.querySelectorAll('input[name="id"]:not(:disabled)').forEach(function (box) {
          box.checked = all.checked;
        });
      });
    }
    // keyboard use of long queues: j/k move, x selects, Enter (or o) opens, / filters
    var table = document.querySelector('table[data-keys="queue"]');
    if (table) {
      var rows = Array.prototype.slice.call(table.tBodies[0].rows).filter(function (r) {
        return r.querySelector("a");
      });
      var at = -1;
      var move = function (to) {
        if (!rows.length) return;
        if (at >= 0) rows[at].classList.remove("current");
        at = Math.max(0, Math.min(rows.length - 1, to));
        rows[at].classList.add("current");
        rows[at].scrollIntoView({block: "nearest"});
      };
      document.addEventListener("keydown", function (event) {
        var tag = (event.target.tagName || "").toLowerCase();
        if (tag === "input" || tag === "textarea" || tag === "select" || event.ctrlKey || event.metaKey || event.altKey) return;
        if (event.key === "j") { move(at + 1); event.preventDefault(); }
        else if (event.key === "k") { move(at - 1); event.preventDefault(); }
        else if (event.key === "x" && at >= 0) {
          var box = rows[at].querySelector('input[name="id"]');
          if (box && !box.disabled) box.checked = !box.checked;
          event.preventDefault();
        } else if ((event.key === "Enter" || event.key === "o") && at >= 0) {
          rows[at].querySelector("a").click();
          event.preventDefault();
        } else if (event.key === "/") {
          var first = document.getElementById("f-grid");
          if (first) { first.focus(); event.preventDefault(); }
        }
      });
    }
    // a bulk action says how many it will touch before it does
    var bulk = document.getElementById("bulk");
    if (bulk) {
      bulk.addEventListener("submit", function (event) {
        var n = bulk.querySelectorAll('input[name="id"]:checked').length;
        var button = event.submitter;
        if (n > 1 && button && !window.confirm(button.textContent.trim() + " × " + n + "?")) event.preventDefault();
      });
    }
  });
})();
