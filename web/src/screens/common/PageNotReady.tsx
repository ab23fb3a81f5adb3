/**
 * What a project page shows before its data is in: why it failed to load (an alert), or, while it loads, an empty
 * page marked busy. Used as `if (!data) return <PageNotReady error={loadError} />`.
 */
export function PageNotReady({ error }: { error: string }) {
  if (!error) return <main class="page" aria-busy="true" />;
  return (
    <main class="page">
      <p class="notice notice-error" role="alert">
        {error}
      </p>
    </main>
  );
}
