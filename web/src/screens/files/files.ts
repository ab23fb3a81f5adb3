// Files: the type the API answers, sizes in words, and who may change a file (as server/policy.py decides).
export interface StoredFile {
  id: number;
  name: string;
  content_type: string;
  size: number;
  version: number;
  visibility: "internal" | "shared";
  task_id: number | null;
  request_id: number | null;
  uploaded_by: { id: number; name: string } | null;
  download_url: string;
}

const UNITS = ["B", "KB", "MB", "GB"];

export function formatSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${UNITS[unit]}`;
}

/** New versions and deleting: staff, or the customer who uploaded it while the project lets customers upload. */
export function mayManage(file: Pick<StoredFile, "uploaded_by">, who: { id: number }, staff: boolean, mayUpload: boolean): boolean {
  return staff || (mayUpload && file.uploaded_by?.id === who.id);
}
