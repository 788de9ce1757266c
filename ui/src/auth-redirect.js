// The redirect page Entra ID sends users back to (MSAL v5's redirect bridge): it hands the sign-in response to the
// page that asked for it (the app tab, a popup's opener or a silent iframe's parent) and goes back there.

import { broadcastResponseToMainFrame } from "@azure/msal-browser/redirect-bridge";

broadcastResponseToMainFrame().catch(() => {
  location.replace("/ui/");
});
