/**
 * What an endpoint URL may be: absolute http or https, with a host, without user name or password (a
 * secret in a URL ends up in logs; the signature is the way to trust a request) and without a fragment,
 * at most 2,000 characters. The relay never follows redirects, so the URL given is the one called.
 */

export const MAX_ENDPOINT_URL_LENGTH = 2000;

/** The URL in its normal form, or why it is refused. */
export function checkEndpointUrl(text: string): { ok: true; url: string } | { ok: false; reason: string } {
  if (text.length > MAX_ENDPOINT_URL_LENGTH)
    return { ok: false, reason: `the url is longer than ${MAX_ENDPOINT_URL_LENGTH} characters` };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, reason: "the url is not an absolute URL" };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    return { ok: false, reason: "the url must be http or https" };
  if (url.hostname === "") return { ok: false, reason: "the url has no host" };
  if (url.username !== "" || url.password !== "")
    return { ok: false, reason: "the url must not carry a user name or password" };
  if (url.hash !== "" || text.includes("#")) return { ok: false, reason: "the url must not have a fragment" };
  return { ok: true, url: url.toString() };
}
