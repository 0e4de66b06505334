/**
 * One warm headless Chromium that prints HTML to PDF, shared by every render of the process.
 *
 * Launching Chromium takes about half a second and a page about a tenth of that, so the
 * browser is launched once and kept; each render gets a fresh page (no state carried from one
 * constat to the next). Renders are bounded (`concurrency` pages at once, the rest queue) and
 * timed out (the page is closed, the render fails, the job is retried later). A browser that
 * crashes or disconnects is dropped and the next render launches a new one.
 *
 * The page is given the HTML with JavaScript disabled and every network request refused: a
 * report is made only of what the template wrote, and a hostile field value can neither run
 * script nor make the server fetch anything.
 */
import type { Browser } from 'puppeteer-core';
import type { Logger } from 'pino';

export interface BrowserPoolOptions {
  executablePath: string;
  /** Pages rendering at once; further renders wait their turn. */
  concurrency: number;
  /** A render taking longer fails (and its page is closed). */
  timeoutMs: number;
  logger: Logger;
}

export class RenderError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RenderError';
  }
}

export class BrowserPool {
  private browser: Promise<Browser> | undefined;
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private closed = false;
  /** Browsers launched so far (1 when nothing crashed). */
  launches = 0;

  constructor(private readonly options: BrowserPoolOptions) {}

  /** Launches the browser now rather than at the first render. */
  async warm(): Promise<void> {
    await this.getBrowser();
  }

  /** Prints `html` as an A4 PDF, with `footer` (Chromium footer template) on every page. */
  async pdf(html: string, footer = '<span></span>'): Promise<Uint8Array> {
    if (this.closed) throw new RenderError('the browser pool is closed');
    await this.acquire();
    try {
      // A (re)launch is bounded by puppeteer's own launch timeout, not by the render's.
      await this.getBrowser().catch((err: unknown) => {
        throw new RenderError(`the browser did not start: ${(err as Error).message}`, {
          cause: err,
        });
      });
      return await this.withTimeout((track) => this.print(html, footer, track));
    } finally {
      this.release();
    }
  }

  /** The browser's process id, if one is running (for operators and tests). */
  async pid(): Promise<number | undefined> {
    const browser = await this.browser?.catch(() => undefined);
    return browser?.process()?.pid;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const browser = this.browser;
    this.browser = undefined;
    for (const wake of this.waiting.splice(0)) wake();
    if (browser) await (await browser.catch(() => undefined))?.close().catch(() => {});
  }

  private dropBrowser(): void {
    const browser = this.browser;
    this.browser = undefined;
    void browser?.then((b) => b.close()).catch(() => {});
  }

  /**
   * Kills a browser that stopped answering, with its renderers. A graceful close waits on a
   * renderer that may be busy for minutes laying out a huge page, burning the CPU the next
   * render (on a fresh browser) needs.
   */
  private killBrowser(): void {
    const browser = this.browser;
    this.browser = undefined;
    void browser
      ?.then((b) => {
        const child = b.process();
        if (child?.pid === undefined) return b.close();
        // Launched detached, the browser leads its own process group: its renderers go too.
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      })
      .catch(() => {});
  }

  private getBrowser(): Promise<Browser> {
    if (!this.browser) {
      const launching = this.launch();
      this.browser = launching;
      // A failed launch is not kept: the next render tries again.
      launching.catch(() => {
        if (this.browser === launching) this.browser = undefined;
      });
    }
    return this.browser;
  }

  private async launch(): Promise<Browser> {
    this.launches++;
    // Loaded at the first render: a second of start-up for every process that never renders.
    const { default: puppeteer } = await import('puppeteer-core');
    const browser = await puppeteer.launch({
      executablePath: this.options.executablePath,
      headless: true,
      // Over a pipe, Chromium quits when the pipe closes: a server killed with SIGKILL (or
      // crashing) takes its browser with it instead of leaving it running. Over a websocket
      // the browser outlives its parent.
      pipe: true,
      // No sandbox: the server often runs as root in a container, where Chromium refuses it;
      // the page runs no script and loads nothing from the network (see print()).
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--font-render-hinting=none',
      ],
    });
    browser.once('disconnected', () => {
      // A browser dropped on purpose (closed, timed out) is no longer the current one.
      const current = this.browser;
      if (this.closed || !current) return;
      void current.then(
        (b) => {
          if (b !== browser || this.browser !== current) return;
          this.options.logger.warn('report browser disconnected; the next render relaunches it');
          this.browser = undefined;
        },
        () => {},
      );
    });
    return browser;
  }

  private async print(
    html: string,
    footer: string,
    track: (close: () => Promise<void>) => void,
  ): Promise<Uint8Array> {
    let browser = await this.getBrowser();
    if (!browser.connected) {
      // It died since the last render and the disconnect was not handled yet.
      this.dropBrowser();
      browser = await this.getBrowser();
    }
    const page = await browser.newPage();
    track(() => page.close().catch(() => {}));
    try {
      await page.setJavaScriptEnabled(false);
      await page.setRequestInterception(true);
      page.on('request', (request) => {
        // data: URIs (embedded images) are not requests; everything else is refused.
        if (request.isInterceptResolutionHandled()) return;
        void request.abort('blockedbyclient').catch(() => {});
      });
      await page.setContent(html, { waitUntil: 'load' });
      return await page.pdf({
        format: 'A4',
        printBackground: true,
        preferCSSPageSize: true,
        displayHeaderFooter: true,
        headerTemplate: '<span></span>',
        footerTemplate: footer,
      });
    } finally {
      await page.close().catch(() => {});
    }
  }

  private async withTimeout<T>(
    run: (track: (close: () => Promise<void>) => void) => Promise<T>,
  ): Promise<T> {
    let closePage: (() => Promise<void>) | undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        void closePage?.();
        // A browser that stops answering would time every later render out too: start afresh.
        this.killBrowser();
        reject(new RenderError(`rendering took longer than ${this.options.timeoutMs} ms`));
      }, this.options.timeoutMs);
    });
    try {
      return await Promise.race([run((close) => (closePage = close)), timeout]);
    } catch (err) {
      if (err instanceof RenderError) throw err;
      throw new RenderError(`rendering failed: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  private async acquire(): Promise<void> {
    while (this.active >= this.options.concurrency) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      if (this.closed) throw new RenderError('the browser pool is closed');
    }
    this.active++;
  }

  private release(): void {
    this.active--;
    this.waiting.shift()?.();
  }
}
