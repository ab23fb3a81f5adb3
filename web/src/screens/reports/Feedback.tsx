// Customer feedback on the report page. A customer member answers the open questions (a score and two texts);
// staff see scores, themes with quotes and action items, ask the customer now, and make an action item of a
// theme. Viewers only read, and the API takes answers only from customer members: viewers get no form.
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api";
import { reasonFor } from "../../app/errors";
import { t, tn, type MessageKey } from "../../i18n";
import { takesPart } from "../common/permissions";

interface Quote {
  answer_id: number | null;
  comment_id: number | null; // a customer comment staff marked as feedback (informal)
  task_id: number | null;
  request_event_id: number | null; // or a customer's reply in a request's history staff marked; else a survey answer
  request_id: number | null;
  kind: string;
  text: string;
  score: number | null;
  by_email: boolean;
}

interface Theme {
  theme: string;
  helped: number;
  hindered: number;
  quotes: Quote[];
  actions: { task_id: number; title: string; done: boolean }[];
}

interface FeedbackView {
  responses: number;
  informal: number;
  score: number | null;
  trend: number | null;
  metric: number | null;
  themes: Theme[];
}

export interface FeedbackRequest {
  id: number;
  milestone_name: string | null;
  answered_by_me: boolean;
  closed_at: string | null;
}

export function Feedback(props: { projectId: number; staff: boolean; projectRole: string | null }) {
  return (
    <section class="feedback" aria-labelledby="feedback-title">
      <h2 id="feedback-title">{t("feedback.title")}</h2>
      {props.staff ? (
        <StaffFeedback projectId={props.projectId} />
      ) : (
        <CustomerFeedback projectId={props.projectId} answers={takesPart(false, props.projectRole)} />
      )}
    </section>
  );
}

function CustomerFeedback({ projectId, answers }: { projectId: number; answers: boolean }) {
  const [open, setOpen] = useState<FeedbackRequest[] | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    api<{ items: FeedbackRequest[] }>("GET", `/api/projects/${projectId}/feedback/requests`).then(
      (r) => setOpen(r.items.filter((q) => !q.answered_by_me && !q.closed_at)),
      (err: unknown) => setError(reasonFor(err)),
    );
  }, [projectId]);
  if (error)
    return (
      <p class="error" role="alert">
        {error}
      </p>
    );
  if (!open) return <p aria-busy="true">{t("common.working")}</p>;
  if (!answers || open.length === 0) return <p>{t("feedback.nothingToAnswer")}</p>;
  return (
    <>
      {open.map((request) => (
        <AnswerForm key={request.id} request={request} />
      ))}
    </>
  );
}

function AnswerForm({ request }: { request: FeedbackRequest }) {
  const [score, setScore] = useState<number | null>(null);
  const [helped, setHelped] = useState("");
  const [hindered, setHindered] = useState("");
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState(false);
  const [error, setError] = useState("");
  const scoreError = `score-${request.id}-error`;

  const submit = async (event: Event) => {
    event.preventDefault();
    if (score === null) return setError(t("feedback.chooseScore"));
    setBusy(true);
    setError("");
    try {
      await api("POST", `/api/feedback/requests/${request.id}/answers`, { score, helped, hindered });
      setSent(true);
    } catch (err) {
      setError(reasonFor(err));
    } finally {
      setBusy(false);
    }
  };

  if (sent) return <p role="status">{t("feedback.thanks")}</p>;
  return (
    <form class="feedback-form" onSubmit={submit} noValidate>
      <p>{request.milestone_name ? t("feedback.aboutMilestone", { milestone: request.milestone_name }) : t("feedback.aboutProject")}</p>
      <fieldset aria-describedby={error ? scoreError : undefined}>
        <legend>{t("feedback.question")}</legend>
        {[1, 2, 3, 4, 5].map((n) => (
          <label key={n} for={`score-${request.id}-${n}`} class="score">
            <input
              type="radio"
              name={`score-${request.id}`}
              value={String(n)}
              id={`score-${request.id}-${n}`}
              required
              checked={score === n}
              onChange={() => setScore(n)}
            />{" "}
            {n}
          </label>
        ))}
      </fieldset>
      <label for={`helped-${request.id}`}>{t("feedback.helpedQuestion")}</label>
      <textarea name="helped" id={`helped-${request.id}`} maxLength={2000} value={helped} onInput={(e) => setHelped(e.currentTarget.value)} />
      <label for={`hindered-${request.id}`}>{t("feedback.hinderedQuestion")}</label>
      <textarea name="hindered" id={`hindered-${request.id}`} maxLength={2000} value={hindered} onInput={(e) => setHindered(e.currentTarget.value)} />
      {error && (
        <p class="error" role="alert" id={scoreError}>
          {error}
        </p>
      )}
      <button type="submit" class="primary" disabled={busy} aria-busy={busy}>
        {busy ? t("common.working") : t("feedback.send")}
      </button>
    </form>
  );
}

function StaffFeedback({ projectId }: { projectId: number }) {
  const [view, setView] = useState<FeedbackView | null>(null);
  const [asked, setAsked] = useState<"no" | "busy" | "yes">("no");
  const [made, setMade] = useState<Record<string, "busy" | "yes">>({});
  const [error, setError] = useState("");
  const load = () =>
    api<FeedbackView>("GET", `/api/projects/${projectId}/feedback`).then(setView, (err: unknown) => setError(reasonFor(err)));
  useEffect(() => void load(), [projectId]);

  const ask = async () => {
    setAsked("busy");
    setError("");
    try {
      await api("POST", `/api/projects/${projectId}/feedback/requests`, {});
      setAsked("yes");
    } catch (err) {
      setAsked("no");
      setError(t("common.failedNowShowing", { reason: reasonFor(err) }));
    }
  };
  const act = async (theme: string) => {
    setMade((m) => ({ ...m, [theme]: "busy" }));
    setError("");
    try {
      await api("POST", `/api/projects/${projectId}/feedback/actions`, { theme });
      setMade((m) => ({ ...m, [theme]: "yes" }));
    } catch (err) {
      setMade(({ [theme]: _, ...rest }) => rest);
      setError(t("common.failedNowShowing", { reason: reasonFor(err) }));
    } finally {
      await load();
    }
  };

  if (!view)
    return error ? (
      <p class="error" role="alert">
        {error}
      </p>
    ) : (
      <p aria-busy="true">{t("common.working")}</p>
    );
  return (
    <>
      <p>
        {tn("feedback.summary", view.responses, {
          score: view.score === null ? "–" : view.score.toFixed(1),
          metric: view.metric === null ? "–" : view.metric.toFixed(1),
        })}
        {view.informal > 0 && <span class="feedback-informal"> · {tn("feedback.informal", view.informal)}</span>}{" "}
        <button type="button" id="feedback-ask" disabled={asked !== "no"} aria-busy={asked === "busy"} onClick={() => void ask()}>
          {asked === "yes" ? t("feedback.asked") : asked === "busy" ? t("common.working") : t("feedback.ask")}
        </button>
      </p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {view.themes.map((theme) => (
        <article class="theme" key={theme.theme}>
          <h3>
            {t(`feedback.theme.${theme.theme}` as MessageKey)}{" "}
            <span class="theme-counts">{t("feedback.counts", { helped: String(theme.helped), hindered: String(theme.hindered) })}</span>
          </h3>
          <ul>
            {theme.quotes.slice(0, 5).map((q) => (
              <QuoteItem
                key={q.comment_id !== null ? `c${q.comment_id}` : q.request_event_id !== null ? `r${q.request_event_id}` : `a${q.answer_id}-${q.kind}`}
                quote={q}
                projectId={projectId}
              />
            ))}
          </ul>
          <ul class="actions">
            {theme.actions.map((a) => (
              <li key={a.task_id}>
                <a href={`/projects/${projectId}/tasks/${a.task_id}`}>{a.title}</a>
                {a.done ? ` ✔ ${t("feedback.done")}` : ""}
              </li>
            ))}
          </ul>
          <button type="button" disabled={made[theme.theme] !== undefined} aria-busy={made[theme.theme] === "busy"} onClick={() => void act(theme.theme)}>
            {made[theme.theme] === "yes" ? t("feedback.actionMade") : made[theme.theme] === "busy" ? t("common.working") : t("feedback.makeAction")}
          </button>
        </article>
      ))}
    </>
  );
}

/** One quote under a theme: a survey answer, or a customer comment (or request reply) staff marked as feedback. A
 * marked item says so (it is informal: the customer did not fill in a survey), says when it came as a reply by email,
 * and links to the comment in its thread or to the request. */
function QuoteItem({ quote: q, projectId }: { quote: Quote; projectId: number }) {
  const label = `${t(`feedback.${q.kind}` as MessageKey)}: “${q.text}”${q.score === null ? "" : ` (${q.score}/5)`}`;
  const comment = q.comment_id !== null && q.task_id !== null;
  const reply = q.request_event_id !== null && q.request_id !== null;
  if (!comment && !reply) return <li class={`quote-${q.kind}`}>{label}</li>;
  return (
    <li class={`quote-${q.kind} quote-marked`} data-comment={q.comment_id ?? undefined} data-request-event={q.request_event_id ?? undefined}>
      <span class="quote-source">
        {t(comment ? "feedback.markedByStaff" : "feedback.replyMarkedByStaff")}
        {q.by_email ? ` · ${t("feedback.viaEmail")}` : ""}
      </span>{" "}
      {label}{" "}
      {comment ? (
        <a href={`/projects/${projectId}/tasks/${q.task_id}#comment-${q.comment_id}`}>{t("feedback.openComment")}</a>
      ) : (
        <a href={`/projects/${projectId}/requests/${q.request_id}#request-event-${q.request_event_id}`}>{t("feedback.openRequest")}</a>
      )}
    </li>
  );
}
