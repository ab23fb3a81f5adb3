import { t } from "../../i18n";
import { LoadFailed } from "./LoadFailed";

/**
 * What a project page shows before its data is in: why it failed to load, or, while it loads, an empty page marked
 * busy. Used as `if (!data) return <PageNotReady error={loadError} />`. With `retry` the failure is a LoadFailed
 * ("Could not load this page: …" with Try again, id `page-load-failed`) and `error` is the reason alone; without,
 * `error` is said as it is.
 */
export function PageNotReady(props: { error: string; retry?: () => Promise<unknown>; class?: string }) {
  const page = `page${props.class ? ` ${props.class}` : ""}`;
  if (!props.error) return <main class={page} aria-busy="true" />;
  return (
    <main class={page}>
      {props.retry ? (
        <LoadFailed id="page-load-failed" text={t("common.loadFailed", { reason: props.error })} retry={props.retry} />
      ) : (
        <p class="notice notice-error" role="alert">
          {props.error}
        </p>
      )}
    </main>
  );
}

/**
 * Why a page that is shown could not be brought up to date (a refresh after a reconnect or a change failed), with
 * Try again; nothing while `error` is "". The page stays as it was, said to be possibly out of date.
 */
export function PageOutOfDate(props: { error: string; retry: () => Promise<unknown> }) {
  if (!props.error) return null;
  return <LoadFailed id="page-load-failed" text={t("common.refreshFailed", { reason: props.error })} retry={props.retry} />;
}
