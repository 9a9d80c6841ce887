// Starts Swagger UI on /docs (a file, not inline script: the Content-Security-Policy allows
// scripts from this server only). The UI's own files come from the installed
// swagger-ui-py package, served under /docs/static.
window.addEventListener("DOMContentLoaded", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
  });
});
