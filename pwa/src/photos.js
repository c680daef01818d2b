// Photos are shrunk on the phone before they are queued: longest side ≤ 1600 px, ≤ 300 KB JPEG,
// orientation applied, and every byte of EXIF (GPS, device) gone because the pixels are re-encoded.
export const MAX_SIDE = 1600;
export const MAX_BYTES = 300 * 1024;

async function decode(file) {
  if (typeof createImageBitmap === "function") {
    try {
      return await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (_) {
      try {
        return await createImageBitmap(file);
      } catch (_) {
        /* fall through to <img> */
      }
    }
  }
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.decoding = "async";
    img.src = url;
    await img.decode();
    return img; // modern browsers apply EXIF orientation to <img> (image-orientation: from-image)
  } finally {
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }
}

function canvasOf(width, height) {
  if (typeof OffscreenCanvas === "function") {
    const c = new OffscreenCanvas(width, height);
    if (c.getContext("2d")) return c;
  }
  const c = document.createElement("canvas");
  c.width = width;
  c.height = height;
  return c;
}

function encode(canvas, quality) {
  if (canvas.convertToBlob) return canvas.convertToBlob({ type: "image/jpeg", quality });
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("encode failed"))), "image/jpeg", quality),
  );
}

export async function sha256Hex(blob) {
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A camera file → {blob (JPEG), sha256, size, width, height}. */
export async function compressPhoto(file) {
  const image = await decode(file);
  const srcW = image.width || image.naturalWidth;
  const srcH = image.height || image.naturalHeight;
  let scale = Math.min(1, MAX_SIDE / Math.max(srcW, srcH));
  let blob = null;
  let width = 0;
  let height = 0;
  for (let round = 0; round < 6; round++) {
    width = Math.max(1, Math.round(srcW * scale));
    height = Math.max(1, Math.round(srcH * scale));
    const canvas = canvasOf(width, height);
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff"; // transparent PNGs become white, not black
    ctx.fillRect(0, 0, width, height);
    ctx.drawImage(image, 0, 0, width, height);
    for (const quality of [0.82, 0.7, 0.6, 0.5]) {
      blob = await encode(canvas, quality);
      if (blob.size <= MAX_BYTES) break;
    }
    if (blob.size <= MAX_BYTES) break;
    scale *= 0.8;
  }
  if (image.close) image.close();
  return { blob, sha256: await sha256Hex(blob), size: blob.size, width, height };
}
