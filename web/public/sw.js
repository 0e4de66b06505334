/**
 * The app's service worker: keeps the app shell (the page, its scripts and chunks, styles,
 * manifest, icon) in a cache so the app starts with the network down. The document itself is
 * not here: it lives in IndexedDB (y-indexeddb), next to the session's details.
 *
 * Network first, cache as the fallback: online, the driver always gets what the server serves
 * (the server answers `no-cache` with ETags, so nothing stale lingers after an update);
 * offline, the last copy. Only GETs under /app/ are touched: GraphQL, the sync websocket,
 * uploads and downloads go to the network as they are.
 *
 * Plain JavaScript served as is from web/public/: it runs in the worker's own global scope,
 * outside the app's bundle.
 */
const CACHE = 'constat-app-shell-v1';
const SCOPE = new URL('./', self.location.href).pathname; // "/app/"
const SHELL = ['', 'main.js', 'app.css', 'manifest.webmanifest', 'icon.svg'].map(
  (name) => SCOPE + name,
);

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(names.filter((n) => n !== CACHE).map((name) => caches.delete(name))),
      )
      .then(() => self.clients.claim()),
  );
});

/** True for the requests this worker answers: same origin, GET, under the app's scope. */
function isShell(request) {
  const url = new URL(request.url);
  return (
    request.method === 'GET' &&
    url.origin === self.location.origin &&
    url.pathname.startsWith(SCOPE)
  );
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (!isShell(request)) return;
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok && response.type === 'basic') {
          // Every client route is the one page: keep it under the scope's own URL.
          const key = request.mode === 'navigate' ? SCOPE : request;
          const copy = response.clone();
          event.waitUntil(caches.open(CACHE).then((cache) => cache.put(key, copy)));
        }
        return response;
      })
      .catch(async () => {
        const cache = await caches.open(CACHE);
        const cached = await cache.match(request.mode === 'navigate' ? SCOPE : request, {
          ignoreSearch: true,
        });
        return cached ?? Response.error();
      }),
  );
});

/**
 * The page that registered this worker was loaded before the worker controlled it, so its
 * chunks went past the fetch handler: the page sends their URLs and they are cached here.
 * The answer says when everything is stored (the app then says it works offline).
 */
self.addEventListener('message', (event) => {
  const data = event.data;
  if (!data || data.type !== 'cache' || !Array.isArray(data.urls)) return;
  const urls = data.urls
    .filter((u) => typeof u === 'string')
    .map((u) => new URL(u, self.location.href))
    .filter((u) => u.origin === self.location.origin && u.pathname.startsWith(SCOPE))
    .map((u) => u.pathname)
    .slice(0, 200);
  const reply = event.ports[0];
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll([...new Set([...SHELL, ...urls])]))
      .then(
        () => reply?.postMessage({ cached: true }),
        (err) => reply?.postMessage({ cached: false, error: String(err) }),
      ),
  );
});
