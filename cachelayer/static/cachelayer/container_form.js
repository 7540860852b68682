// Container form: show only the chosen model's fields in the column lists.
// The same field name appears under several models; the chosen values move
// to the visible group, so what is selected is what is submitted.
"use strict";
window.addEventListener("load", function () {
    const model = document.getElementById("id_content_type");
    if (!model) { return; }
    const columns = ["key_columns", "value_columns", "flags_column", "cas_column", "expire_time_column"];
    function filter() {
        const label = model.selectedIndex >= 0 ? model.options[model.selectedIndex].text : "";
        columns.forEach(function (name) {
            const select = document.getElementById("id_" + name);
            if (!select) { return; }
            const chosen = new Set(Array.from(select.selectedOptions, function (o) { return o.value; }));
            select.querySelectorAll("optgroup").forEach(function (group) {
                group.hidden = group.label !== label;
                group.querySelectorAll("option").forEach(function (o) {
                    o.selected = !group.hidden && chosen.has(o.value);
                });
            });
        });
    }
    model.addEventListener("change", filter);
    filter();
});
