import "./style.css";
import { render } from "preact";
import { LocationProvider } from "preact-iso";
import { App } from "./app/App";
import { keepFocusAcrossRedraws } from "./app/keepFocus";
import { pickLocale, setLocale } from "./i18n";

setLocale(pickLocale(navigator.languages));
keepFocusAcrossRedraws();
// The router takes over same-origin links, except the API's (downloads, exports).
render(
  <LocationProvider scope={/^\/(?!api\/)/}>
    <App />
  </LocationProvider>,
  document.getElementById("app")!,
);
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch(() => undefined); // offline reading is a bonus, not a need
}
