// A multipart upload whose progress can be watched. fetch reports no upload progress, so the body is
// built in memory (archives are at most 50 MB) and handed to fetch as a stream pulled chunk by chunk:
// each pull is a chunk the socket accepted, which is what a progress bar should show.

export interface MultipartBody {
  bytes: Uint8Array;
  contentType: string;
}

/** Settings first, then the archive as the field `module` (the seed's field name). */
export async function multipartBody(
  fields: ReadonlyArray<readonly [string, string]>,
  archive: Uint8Array,
  filename: string,
): Promise<MultipartBody> {
  const form = new FormData();
  for (const [k, v] of fields) form.append(k, v);
  // Copied into a plain ArrayBuffer: Blob refuses views that might sit on a SharedArrayBuffer.
  form.append('module', new Blob([new Uint8Array(archive)]), filename);
  // Response serialises a FormData exactly as fetch would, boundary and all.
  const r = new Response(form);
  const contentType = r.headers.get('content-type');
  if (!contentType) throw new Error('could not encode the upload');
  return { bytes: new Uint8Array(await r.arrayBuffer()), contentType };
}

const CHUNK = 64 * 1024;

export function progressStream(bytes: Uint8Array, onProgress: (sent: number, total: number) => void): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= bytes.length) {
        controller.close();
        return;
      }
      const end = Math.min(sent + CHUNK, bytes.length);
      controller.enqueue(bytes.subarray(sent, end));
      sent = end;
      onProgress(sent, bytes.length);
    },
  });
}
