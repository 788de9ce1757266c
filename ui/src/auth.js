// Signing in. In Azure: Microsoft Entra ID through MSAL (loaded only then), tokens cached in sessionStorage by MSAL.
// Locally: devhost's /dev/sign-in page leaves a development token in sessionStorage under DEV_KEY.
// Either way the token lives only in this tab (never in a URL, never in localStorage) and goes out only in the
// Authorization header of same-origin API calls.

const DEV_KEY = "simgate.devToken";
let settings = { mode: "dev", sign_in: "/dev/sign-in" };
let msal = null;
let InteractionRequired = null;
let account = null;
const listeners = new Set();

/** Set up sign-in from /ui/config.json's `auth`; returns a path to go back to after a sign-in redirect, if any. */
export async function initAuth(config) {
  settings = config || settings;
  if (settings.mode !== "msal") return null;
  const lib = await import("@azure/msal-browser");
  InteractionRequired = lib.InteractionRequiredAuthError;
  msal = await lib.createStandardPublicClientApplication({
    auth: {
      clientId: settings.client_id,
      authority: settings.authority,
      knownAuthorities: [new URL(settings.authority).host],
      redirectUri: new URL(settings.redirect_path, location.origin).href,
      postLogoutRedirectUri: new URL("/ui/", location.origin).href,
    },
    cache: { cacheLocation: "sessionStorage" },
  });
  const result = await msal.handleRedirectPromise();
  account = result?.account || msal.getActiveAccount() || msal.getAllAccounts()[0] || null;
  if (account) msal.setActiveAccount(account);
  return result?.state && result.state.startsWith("/ui/") ? result.state : null;
}

function devSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(DEV_KEY) || "null");
    if (session && session.expires_at > Date.now() + 30_000) return session;
  } catch {
    // an unreadable entry is no session
  }
  sessionStorage.removeItem(DEV_KEY);
  return null;
}

/** The signed-in user's name, or null. */
export function currentUser() {
  if (settings.mode === "msal") return account ? account.name || account.username : null;
  return devSession()?.user || null;
}

/** A bearer token for the API, or null when nobody is signed in. */
export async function getToken() {
  if (settings.mode !== "msal") return devSession()?.token || null;
  if (!account) return null;
  const request = { scopes: settings.scopes, account };
  try {
    return (await msal.acquireTokenSilent(request)).accessToken;
  } catch (error) {
    if (error instanceof InteractionRequired) {
      await msal.acquireTokenRedirect({ ...request, state: location.pathname + location.search });
    }
    throw error;
  }
}

/** Go and sign in, coming back to `returnTo` (a /ui/ path). */
export async function signIn(returnTo = location.pathname + location.search) {
  if (settings.mode === "msal") {
    await msal.loginRedirect({ scopes: settings.scopes, state: returnTo });
    return;
  }
  location.assign(`${settings.sign_in}?return=${encodeURIComponent(returnTo)}`);
}

/** Sign out of this tab (and, with Entra ID, of the session MSAL holds). */
export async function signOut() {
  if (settings.mode === "msal") {
    await msal.logoutRedirect({ account });
    return;
  }
  sessionStorage.removeItem(DEV_KEY);
  changed();
}

/** Drop a token the server refused. */
export function forgetToken() {
  if (settings.mode !== "msal") sessionStorage.removeItem(DEV_KEY);
  changed();
}

/** Call `listener` whenever the signed-in user changes. */
export function onAuthChange(listener) {
  listeners.add(listener);
}

function changed() {
  for (const listener of listeners) listener(currentUser());
}
