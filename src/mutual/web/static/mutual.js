// Progressive enhancement for Mutual's pages: NHS.UK components, and charts drawn from the Vega-Lite spec each
// chart container names. Every chart's figures are in a table on the page, so nothing is lost without this script.
import { initAll } from "/static/vendor/nhsuk-frontend/nhsuk-frontend.min.js";

document.body.classList.add("js-enabled", "nhsuk-frontend-supported");
initAll();

// Charts: <div class="mutual-chart" data-spec="ID"> with <script type="application/json" id="ID"> holding the spec.
// Vega runs its expressions through the interpreter, so the page's content security policy needs no unsafe-eval.
for (const container of document.querySelectorAll(".mutual-chart[data-spec]")) {
  const source = document.getElementById(container.dataset.spec);
  if (!source || typeof window.vegaEmbed !== "function") continue;
  const spec = JSON.parse(source.textContent);
  window
    .vegaEmbed(container, spec, {
      actions: false,
      // vega-embed and its tooltips would add <style> elements, which the content security policy refuses:
      // their few rules are in /static/mutual.css instead
      defaultStyle: false,
      tooltip: { disableDefaultStyle: true },
      ast: true,
      expr: window.vegaInterpreter,
      renderer: "svg",
      config: { font: "Arial, sans-serif" },
    })
    .then(() => container.classList.add("mutual-chart--drawn"))
    .catch((error) => {
      container.textContent = "The chart could not be drawn; its figures are in the table below.";
      console.error(error);
    });
}
