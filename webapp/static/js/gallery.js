// Gallery: apply the category filter as soon as it changes (the form still works without JavaScript).
"use strict";
(function () {
  const select = document.getElementById("class-filter");
  if (select) {
    select.addEventListener("change", () => select.form.submit());
  }
})();
