// Search in the header: tasks, comments, requests, files and notes the person may see (GET /api/search), as they
// type; Ctrl/Cmd-K jumps here from anywhere, Escape closes the results.
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../../api";
import { reasonFor } from "../../app/errors";
import { t, tn, type MessageKey } from "../../i18n";
import "./search.css";

export interface SearchHit {
  kind: "task" | "comment" | "request" | "file" | "note";
  project_id: number;
  title: string;
  excerpt: string;
  link: string;
}

const ICONS: Record<SearchHit["kind"], string> = { task: "☐", comment: "💬", request: "?", file: "📄", note: "📝" };
const DEBOUNCE_MS = 250;

export function Search() {
  const [q, setQ] = useState("");
  const [hits, setHits] = useState<SearchHit[] | null>(null);
  /** Why the last search failed (never shown as "Nothing found"). */
  const [failed, setFailed] = useState("");
  const [open, setOpen] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const box = useRef<HTMLFormElement>(null);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "k") {
        e.preventDefault();
        input.current?.focus();
        input.current?.select();
      }
    };
    const onClick = (e: MouseEvent) => {
      if (!box.current?.contains(e.target as Node)) setOpen(false);
    };
    addEventListener("keydown", onKey);
    addEventListener("mousedown", onClick);
    return () => {
      removeEventListener("keydown", onKey);
      removeEventListener("mousedown", onClick);
    };
  }, []);
  useEffect(() => {
    const term = q.trim();
    if (term.length < 2) {
      setHits(null);
      setFailed("");
      return;
    }
    let current = true;
    const timer = setTimeout(() => {
      api<{ items: SearchHit[] }>("GET", `/api/search?q=${encodeURIComponent(term)}`)
        .then((answer) => {
          if (!current) return;
          setHits(answer.items);
          setFailed("");
        })
        .catch((err: unknown) => {
          if (!current) return;
          setHits([]);
          setFailed(reasonFor(err));
        });
    }, DEBOUNCE_MS);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [q]);
  return (
    <form
      ref={box}
      role="search"
      class="search"
      onSubmit={(e) => e.preventDefault()}
      onKeyDown={(e) => {
        if (e.key === "Escape") setOpen(false);
      }}
    >
      <input
        ref={input}
        id="search"
        type="search"
        autocomplete="off"
        aria-label={t("search.label")}
        aria-controls={open && hits !== null ? "search-results" : undefined}
        placeholder={t("search.placeholder")}
        value={q}
        onInput={(e) => {
          setQ(e.currentTarget.value);
          setOpen(true);
        }}
        onFocus={() => setOpen(true)}
      />
      {open && hits !== null && (
        <div id="search-results" class="search-results">
          {failed ? (
            <p class="error" role="alert">
              {t("search.failed", { reason: failed })}
            </p>
          ) : (
            <p class="muted" role="status">
              {hits.length ? tn("search.results", hits.length) : t("search.none")}
            </p>
          )}
          <ul>
            {hits.map((hit) => (
              <li key={hit.link + hit.kind} data-kind={hit.kind}>
                <a href={hit.link} onClick={() => setOpen(false)}>
                  <span class="search-kind">
                    <span aria-hidden="true">{ICONS[hit.kind]}</span> {t(`search.kind.${hit.kind}` as MessageKey)}
                  </span>
                  <span class="search-title">{hit.title}</span>
                  {hit.excerpt && <span class="search-excerpt">{hit.excerpt}</span>}
                </a>
              </li>
            ))}
          </ul>
        </div>
      )}
    </form>
  );
}
