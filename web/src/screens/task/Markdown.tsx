// Markdown rendered safely, in two layers as the server does (server/rendering.py): markdown-it with raw HTML
// off and no images, then safeFragment()'s allow-list. markdown-it loads only when something is rendered.
import { useEffect, useRef } from "preact/hooks";
import { locale, t } from "../../i18n";
import { highlightMentions, safeFragment } from "../../safe-html";

type Render = (text: string) => string;
let renderer: Promise<Render> | null = null;

function markdown(): Promise<Render> {
  renderer ??= import("markdown-it").then(({ default: MarkdownIt }) => {
    const md = new MarkdownIt("commonmark", { html: false, linkify: false, typographer: false }).enable("strikethrough");
    md.disable("image"); // no remote images: they would leak who reads
    return (text: string) => md.render(text);
  });
  return renderer;
}

/** Shows `html` (already rendered by the server) or `text` (rendered here), with mentions of `names` marked and a
 * mention of `me` (the reader's name) marked apart. */
export function RichText(props: { html?: string; text?: string; names?: string[]; me?: string; class?: string }) {
  const { html, text, names = [], me, class: cls } = props;
  const ref = useRef<HTMLDivElement>(null);
  const lang = locale();
  useEffect(() => {
    let current = true;
    const show = (source: string) => {
      if (!current || !ref.current) return;
      const fragment = safeFragment(source);
      highlightMentions(fragment, names, me ? { name: me, hint: t("thread.mentionsYou") } : undefined);
      ref.current.replaceChildren(fragment);
    };
    if (html !== undefined) show(html);
    else void markdown().then((render) => show(render(text ?? "")));
    return () => {
      current = false;
    };
  }, [html, text, names.join("\n"), me, lang]);
  return <div ref={ref} class={cls} />;
}
