/**
 * What Chromium's fake camera films: `--use-file-for-fake-video-capture` plays a Y4M file in a
 * loop in place of a real camera. Here, a picture (a PNG: the QR code another phone shows)
 * centred on a white page, as one 640 × 480 frame of 4:2:0 full-range YUV.
 */
import { writeFile } from 'node:fs/promises';
import { createCanvas, loadImage } from '@napi-rs/canvas';

const WIDTH = 640;
const HEIGHT = 480;
/** How much of the frame's height the picture fills: a phone held up to another phone. */
const FILL = 0.8;

export async function writeCameraVideo(file: string, png: Buffer): Promise<void> {
  const image = await loadImage(png);
  const canvas = createCanvas(WIDTH, HEIGHT);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, WIDTH, HEIGHT);
  const scale = (HEIGHT * FILL) / Math.max(image.width, image.height);
  const w = image.width * scale;
  const h = image.height * scale;
  ctx.drawImage(image, (WIDTH - w) / 2, (HEIGHT - h) / 2, w, h);
  const rgba = ctx.getImageData(0, 0, WIDTH, HEIGHT).data;
  const luma = Buffer.alloc(WIDTH * HEIGHT);
  for (let i = 0; i < luma.length; i++)
    luma[i] = Math.round(
      0.299 * rgba[i * 4]! + 0.587 * rgba[i * 4 + 1]! + 0.114 * rgba[i * 4 + 2]!,
    );
  // Grey: the pictures filmed here are black and white.
  const chroma = Buffer.alloc((WIDTH / 2) * (HEIGHT / 2), 128);
  const header = `YUV4MPEG2 W${WIDTH} H${HEIGHT} F10:1 Ip A1:1 C420jpeg\n`;
  await writeFile(
    file,
    Buffer.concat([Buffer.from(header), Buffer.from('FRAME\n'), luma, chroma, chroma]),
  );
}
