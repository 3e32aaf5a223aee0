// Reads the claims the client needs from a JWT (its `sub` and `exp`) without verifying it: the
// server verifies; the client only needs to know whose events to listen for and when to refresh.
function base64UrlDecode(part) {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const binary = atob(base64);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
}
export function readClaims(token) {
    try {
        const payload = JSON.parse(base64UrlDecode(token.split(".")[1] ?? ""));
        return {
            sub: typeof payload.sub === "string" ? payload.sub : null,
            exp: typeof payload.exp === "number" && Number.isFinite(payload.exp) ? payload.exp : null,
        };
    }
    catch {
        return { sub: null, exp: null };
    }
}
//# sourceMappingURL=token.js.map