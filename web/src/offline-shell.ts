/**
 * The app starts without a network: `public/sw.js` (a service worker) keeps the app shell in a
 * cache. The page that registers it was loaded before the worker controlled it, so its modules
 * went past the worker: their URLs (the browser's resource timing list) are sent to the worker
 * to be cached. When everything is stored, `<html data-offline-ready="true">` says so (tests and
 * the sign-in screen's hint read it). A browser without service workers (or a page not served
 * from a secure origin) simply gets no offline start; the document is kept in IndexedDB either
 * way.
 */
export async function installOfflineShell(): Promise<boolean> {
  if (!('serviceWorker' in navigator)) return false;
  try {
    await navigator.serviceWorker.register('/app/sw.js', { scope: '/app/' });
    const registration = await navigator.serviceWorker.ready;
    const worker = registration.active;
    if (!worker) return false;
    const urls = [
      location.pathname,
      ...performance
        .getEntriesByType('resource')
        .map((entry) => entry.name)
        .filter((name) => new URL(name).origin === location.origin),
    ];
    const cached = await new Promise<boolean>((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = (event: MessageEvent<{ cached?: boolean }>) =>
        resolve(event.data.cached === true);
      worker.postMessage({ type: 'cache', urls }, [channel.port2]);
    });
    document.documentElement.dataset.offlineReady = String(cached);
    return cached;
  } catch (err) {
    console.warn('offline start unavailable', err);
    return false;
  }
}
