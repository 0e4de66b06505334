/**
 * Pairing by QR code: party A shows the ticket's `qrPayload` (`constat://join?code=123456`),
 * party B's camera reads it. The scanner uses the browser's BarcodeDetector when there is one
 * and a decoder in a worker otherwise; typing the six digits always works too. Without a camera
 * (a desktop, a refused permission) a picture of the code goes through the same decoder.
 */
import QRCode from 'qrcode';
import QrScanner from 'qr-scanner';
import { joinCodeOf } from './input-rules.js';
import { t } from './i18n.js';

export async function qrImage(payload: string): Promise<string> {
  return QRCode.toDataURL(payload, { errorCorrectionLevel: 'M', margin: 2, width: 440 });
}

/** Starts the camera on `video`; resolves the first join code seen. `stop()` ends it. */
export function scanJoinCode(video: HTMLVideoElement): {
  code: Promise<string>;
  stop: () => void;
} {
  let scanner: QrScanner | undefined;
  const code = new Promise<string>((resolve, reject) => {
    scanner = new QrScanner(
      video,
      (result) => {
        const found = joinCodeOf(result.data);
        if (found) {
          scanner?.destroy();
          resolve(found);
        }
      },
      { preferredCamera: 'environment', returnDetailedScanResult: true },
    );
    scanner.start().catch((err: unknown) => {
      scanner?.destroy();
      reject(err instanceof Error ? err : new Error(String(err)));
    });
  });
  return { code, stop: () => scanner?.destroy() };
}

/**
 * Reads the join code from a picture of A's QR code (a photo, a screenshot): the decoder the
 * camera uses, on one image. Rejects with a message the driver can act on.
 */
export async function joinCodeFromImage(image: Blob | HTMLCanvasElement): Promise<string> {
  let data: string;
  try {
    data = (await QrScanner.scanImage(image, { returnDetailedScanResult: true })).data;
  } catch {
    throw new Error(t('noQrInImage'));
  }
  const code = joinCodeOf(data);
  if (!code) throw new Error(t('noQrInImage'));
  return code;
}
