// The service worker of an exported model's page: on install it caches what the page
// loads of the files export.json lists (all but the TFLite files it does not run and a
// SavedModel: the page, LiteRT.js, its TFLite file, the vocabularies), then
// answers from that cache first, so the page works offline after the first visit. The
// cache is named after export.json's sha256: a new export gets a new cache, and the
// old one is deleted when the new worker takes over.

const PREFIX = `zoo-web ${self.registration.scope} `;

async function cacheName(manifestText) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(manifestText));
  const hex = Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0"));
  return PREFIX + hex.join("");
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const response = await fetch("export.json", { cache: "no-store" });
      const manifestText = await response.text();
      const cache = await caches.open(await cacheName(manifestText));
      const manifest = JSON.parse(manifestText);
      const paths = manifest.files
        .map((file) => file.path)
        .filter(
          (path) =>
            path === manifest.web.tflite ||
            !(path.endsWith(".tflite") || path.startsWith("saved_model/")),
        );
      await cache.addAll(["./", ...paths]);
      await cache.put("export.json", new Response(manifestText, { headers: response.headers }));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      const response = await fetch("export.json", { cache: "no-store" }).catch(() => null);
      const current = response && response.ok ? await cacheName(await response.text()) : null;
      for (const name of await caches.keys()) {
        if (current && name.startsWith(PREFIX) && name !== current) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  if (event.request.method !== "GET") return;
  event.respondWith(
    (async () => {
      const cached = await caches.match(event.request, { ignoreSearch: true });
      return cached ?? fetch(event.request);
    })(),
  );
});
