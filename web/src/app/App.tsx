// The app shell: the session decides between the public pages and the signed-in ones; the router picks the screen.
import { useEffect, useState } from "preact/hooks";
import { lazy, Route, Router, useLocation } from "preact-iso";
import type { User } from "../api";
import { WaitingOnYou } from "../screens/home/WaitingOnYou";
import { may } from "../people-api";
import { Board } from "../screens/board/Board";
import { Files } from "../screens/files/Files";
import { Projects } from "../screens/home/Projects";
import { RequestPage } from "../screens/requests/RequestPage";
import { Requests } from "../screens/requests/Requests";
import { NotificationPreferences } from "../screens/account/NotificationPreferences";
import { Integrations } from "../screens/integrations/Integrations";
import { NotesList } from "../screens/notes/NotesList";
import { NewProjectButton } from "../screens/new-project/NewProject";
import { Sessions } from "../screens/account/Sessions";
import { Enrol } from "../screens/account/Enrol";
import { SecondFactor } from "../screens/account/SecondFactor";
import { SignIn } from "../screens/sign-in/SignIn";
import { Invite } from "../screens/sign-in/Invite";
import { ResetPassword } from "../screens/sign-in/ResetPassword";
import { SignInLink } from "../screens/sign-in/SignInLink";
import { Tokens } from "../screens/account/Tokens";
import { Organization } from "../screens/organization/Organization";
import { Milestones } from "../screens/milestones/Milestones";
import { ActivityFeed } from "../screens/activity/ActivityFeed";
import { ProjectPeople } from "../screens/people/ProjectPeople";
import { ProjectSettings } from "../screens/settings/Settings";
import { TaskPage } from "../screens/task/TaskPage";
import { ConfirmDialog } from "./confirm";
import { Header } from "./Header";
import { missingAt, NotFound } from "./NotFound";
import { Toasts } from "./toast";
import { finishSignIn, liveClient, loadSession, mustEnrol, user, type SignInResult } from "./session";

// The note editor (Tiptap, ProseMirror, Yjs) is loaded when a note is opened, not with every page.
const NoteEditor = lazy(() => import("../screens/notes/NoteEditor").then((m) => m.NoteEditor));
import { t } from "../i18n";

// Path parameters, by name (each route has some of them).
interface Params {
  project: string;
  note: string;
  request: string;
  task: string;
}
const n = Number;

// Each screen reads who is signed in from the session (set before the router renders).
const me = (): User => user.value!;

// The audit log is for admins only: loaded when opened.
const AuditLog = lazy(() => import("../screens/audit/AuditLog").then((m) => m.AuditLog));

// The dashboards (Chart.js) load only when opened.
const ReportsScreen = lazy(() => import("../screens/reports/Reports").then((m) => m.Reports));
const PortfolioScreen = lazy(() => import("../screens/reports/Portfolio").then((m) => m.Portfolio));

function Home() {
  return (
    <main class="page">
      <WaitingOnYou />
      {may.createProject(me()) && <NewProjectButton />}
      <Projects mayCreate={may.createProject(me())} />
    </main>
  );
}
const s = {
  Tokens: () => (
    <>
      <Tokens user={me()} />
      <div class="page">
        <SecondFactor />
        <Sessions />
        <NotificationPreferences />
      </div>
    </>
  ),
  Audit: () => <AuditLog />,
  // The note editor (Tiptap, Yjs) loads only when opened.
  Note: (p: Params) => <NoteEditor key={`${p.project}:${p.note}`} projectId={n(p.project)} noteId={n(p.note)} who={me()} />,
  Notes: (p: Params) => <NotesList projectId={n(p.project)} who={me()} />,
  Integrations: (p: Params) => <Integrations projectId={n(p.project)} who={me()} />,
  Reports: (p: Params) => <ReportsScreen projectId={n(p.project)} who={me()} />,
  Portfolio: () => <PortfolioScreen />,
  Requests: (p: Params) => <Requests projectId={n(p.project)} who={me()} />,
  Request: (p: Params) => <RequestPage projectId={n(p.project)} requestId={n(p.request)} who={me()} />,
  Files: (p: Params) => <Files projectId={n(p.project)} who={me()} />,
  Task: (p: Params) => <TaskPage projectId={n(p.project)} taskId={n(p.task)} who={me()} />,
  People: (p: Params) => <ProjectPeople projectId={n(p.project)} user={me()} />,
  Settings: (p: Params) => <ProjectSettings projectId={n(p.project)} user={me()} />,
  Milestones: (p: Params) => <Milestones projectId={n(p.project)} user={me()} />,
  Activity: (p: Params) => <ActivityFeed projectId={n(p.project)} who={me()} />,
  Organization: () => <Organization user={me()} />,
  Board: (p: Params) => <Board projectId={n(p.project)} who={me()} />,
};

function SignedIn({ who }: { who: User }) {
  liveClient(); // the header shows the connection from the first signed-in page on
  const { path } = useLocation();
  // Every navigation starts at the top of the new page (the browser keeps the old offset for a client-side route).
  // A page found missing earlier is asked again when visited again.
  useEffect(() => {
    scrollTo(0, 0);
    missingAt.value = null;
  }, [path]);
  const skip = (e: MouseEvent) => {
    e.preventDefault();
    const target = document.querySelector<HTMLElement>("#content main, #content h1, #content");
    target?.setAttribute("tabindex", "-1");
    target?.focus();
  };
  return (
    <>
      <a class="skip-link" href="#content" onClick={skip}>
        {t("nav.skip")}
      </a>
      <Header who={who} />
      <div id="content">
        {missingAt.value === path ? (
          <NotFound />
        ) : (
          <Router>
            <Route path="/settings/tokens" component={s.Tokens} />
            <Route path="/audit" component={s.Audit} />
            <Route path="/reports" component={s.Portfolio} />
            <Route path="/projects/:project/notes/:note" component={s.Note} />
            <Route path="/projects/:project/notes" component={s.Notes} />
            <Route path="/projects/:project/reports" component={s.Reports} />
            <Route path="/projects/:project/requests/:request" component={s.Request} />
            <Route path="/projects/:project/requests" component={s.Requests} />
            <Route path="/projects/:project/files" component={s.Files} />
            <Route path="/projects/:project/people" component={s.People} />
            <Route path="/projects/:project/settings" component={s.Settings} />
            <Route path="/projects/:project/milestones" component={s.Milestones} />
            <Route path="/projects/:project/activity" component={s.Activity} />
            <Route path="/projects/:project/integrations" component={s.Integrations} />
            <Route path="/organization" component={s.Organization} />
            <Route path="/projects/:project/tasks/:task" component={s.Task} />
            <Route path="/projects/:project" component={s.Board} />
            <Route path="/requests" component={Home} />
            <Route path="/" component={Home} />
            <Route default component={NotFound} />
          </Router>
        )}
      </div>
      <Toasts />
      <ConfirmDialog />
    </>
  );
}

export function App() {
  const { path, route } = useLocation();
  const who = user.value;
  // A new link opened on the same page changes only the fragment: the token in it is a new page.
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const changed = () => setHash(location.hash);
    addEventListener("hashchange", changed);
    return () => removeEventListener("hashchange", changed);
  }, []);
  // Not while a sign-in link is being redeemed: an answer of "nobody" sent before it would sign the person out.
  useEffect(() => {
    if (who === undefined && path !== "/sign-in-link") void loadSession();
  }, [who, path]);
  // Public pages: an invitation, a reset or a sign-in link carries its token in the fragment (never sent to a server log).
  // Joining by invitation lands on the project's board, the token gone from the address bar and history.
  // A person with a second factor is asked for it first (the sign-in screen), then lands on the home page.
  const joined = (result: SignInResult, projectId: number) => {
    route(finishSignIn(result) ? `/projects/${projectId}` : "/", true);
  };
  if (path === "/invite") return <Invite key={hash} token={hash.slice(1)} onJoined={joined} />;
  if (path === "/reset-password") return <ResetPassword key={hash} token={hash.slice(1)} />;
  // A sign-in link lands on the home page once it signed in, the spent token gone from the address bar and history.
  const linked = (result: SignInResult) => {
    finishSignIn(result);
    route("/", true);
  };
  if (path === "/sign-in-link") {
    return <SignInLink key={hash} token={hash.slice(1)} onSignedIn={linked} />;
  }
  if (who === undefined) return null;
  if (who === null) return <SignIn />;
  if (mustEnrol.value) return <Enrol />;
  return <SignedIn who={who} />;
}
