/**
 * A photo of a paper made ready for OCR with sharp (libvips, off the event loop in libuv's
 * pool): turned upright from its EXIF orientation, grayscale, scaled so text is neither tiny
 * nor huge, denoised with a median filter and stretched to full contrast. Size and pixel
 * limits are checked before any pixel is decoded. Deskewing is left to Tesseract's own layout
 * analysis (sharp has none; a few degrees are read fine, measured on the degraded specimens).
 */
import type { Metadata } from 'sharp';

export interface ImageLimits {
  maxBytes: number;
  maxPixels: number;
}

/** The image cannot be used: not an image, too big, or damaged. */
export class UnusableImage extends Error {
  constructor(
    readonly reason: 'too_large' | 'too_many_pixels' | 'not_an_image' | 'too_small',
    message: string,
  ) {
    super(message);
    this.name = 'UnusableImage';
  }
}

/** Longest side after scaling: about 300 dpi across a card, enough for Tesseract's LSTM. */
const TARGET_LONG_SIDE = 2000;
const MIN_SIDE = 200;

export async function prepareImage(bytes: Uint8Array, limits: ImageLimits): Promise<Buffer> {
  if (bytes.byteLength > limits.maxBytes) {
    throw new UnusableImage('too_large', `${bytes.byteLength} bytes > ${limits.maxBytes}`);
  }
  // Loaded at the first paper read, not with every server.
  const { default: sharp } = await import('sharp');
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: limits.maxPixels }).metadata();
  } catch (err) {
    throw new UnusableImage('not_an_image', `not a readable image: ${(err as Error).message}`);
  }
  const { width = 0, height = 0 } = meta;
  if (width * height > limits.maxPixels) {
    throw new UnusableImage('too_many_pixels', `${width}×${height} > ${limits.maxPixels} pixels`);
  }
  if (Math.min(width, height) < MIN_SIDE) {
    throw new UnusableImage('too_small', `${width}×${height}: too small to read`);
  }
  try {
    return await sharp(bytes, { limitInputPixels: limits.maxPixels, failOn: 'error' })
      .rotate()
      .grayscale()
      .resize({
        width: TARGET_LONG_SIDE,
        height: TARGET_LONG_SIDE,
        fit: 'inside',
        withoutEnlargement: Math.max(width, height) >= TARGET_LONG_SIDE / 2,
      })
      .median(5)
      .normalise()
      .png({ compressionLevel: 1 })
      .toBuffer();
  } catch (err) {
    throw new UnusableImage(
      'not_an_image',
      `the image cannot be decoded: ${(err as Error).message}`,
    );
  }
}
