// The API of managing people and projects: clients, staff, projects, members and invitations.
// Thin typed calls over `api()`; what each role may do is decided here once (`may`), the same way the server does.
import { allPages, api, type Project, type User } from "./api";

export type ProjectRole = "manager" | "member" | "customer" | "viewer";
export type OrgRole = User["role"];

export const CUSTOMER_ROLES: readonly ProjectRole[] = ["customer", "viewer"];
export const STAFF_ROLES: readonly ProjectRole[] = ["member", "manager"];

export interface Client {
  id: number;
  name: string;
  created_at: string;
}

export interface StaffPerson {
  id: number;
  name: string;
  email: string;
  role: OrgRole;
  active: boolean;
}

export interface Member {
  user_id: number;
  name: string;
  email: string | null;
  role: ProjectRole;
  is_customer: boolean;
}

export interface Invite {
  id: number;
  project_id: number;
  email: string;
  role: ProjectRole;
  created_at: string;
  expires_at: string;
  accepted_at: string | null;
}

export interface InviteResult {
  status: "invited" | "added";
  invite: Invite | null;
  member: Member | null;
  /** The link itself, when the server could not mail it: the inviter passes it on. */
  link: string | null;
}

export interface TemplateStatus {
  name: string;
  category: string;
  colour: string;
}

export interface Template {
  id: number;
  name: string;
  statuses: TemplateStatus[];
}

export interface ProjectDetails extends Project {
  client_id: number;
  archived: boolean;
}

// What the API allows each role (server/policy.py): the UI offers nothing else.
export const may = {
  createProject: (user: User) => user.role === "owner" || user.role === "admin",
  deleteProject: (user: User) => user.role === "owner" || user.role === "admin",
  manageClients: (user: User) => user.role === "owner" || user.role === "admin",
  seeOrganization: (user: User) => user.role !== "customer",
  manageStaff: (user: User) => user.role === "owner",
  /** Rename, archive, members, invitations: admins, and staff managing the project. */
  manageProject: (user: User, project: { my_role: string | null }) =>
    user.role === "owner" || user.role === "admin" || (user.role === "staff" && project.my_role === "manager"),
  /** Roles the user may invite a new person with: new staff only by admins. */
  inviteRoles: (user: User): readonly ProjectRole[] =>
    user.role === "owner" || user.role === "admin" ? [...CUSTOMER_ROLES, ...STAFF_ROLES] : CUSTOMER_ROLES,
  /** Roles a member may be given: staff hold staff roles, customers customer roles. */
  rolesFor: (member: Pick<Member, "is_customer">): readonly ProjectRole[] =>
    member.is_customer ? CUSTOMER_ROLES : STAFF_ROLES,
};

export const listClients = () => allPages<Client>("/api/clients");
export const createClient = (name: string) => api<Client>("POST", "/api/clients", { name });
export const renameClient = (id: number, name: string) => api<Client>("PATCH", `/api/clients/${id}`, { name });

export const listStaff = async () => (await api<{ items: StaffPerson[] }>("GET", "/api/staff")).items;
export const changeStaff = (id: number, change: { role?: "admin" | "staff"; active?: boolean }) =>
  api<StaffPerson>("PATCH", `/api/staff/${id}`, change);

export const listTemplates = async () => (await api<{ items: Template[] }>("GET", "/api/workflow-templates")).items;

export const getProject = (id: number) => api<ProjectDetails>("GET", `/api/projects/${id}`);
export const listProjects = () => allPages<ProjectDetails>("/api/projects");
export const createProject = (body: { name: string; client_id: number; description?: string; template_id?: number }) =>
  api<ProjectDetails>("POST", "/api/projects", body);
export const updateProject = (id: number, change: { name?: string; description?: string; archived?: boolean }) =>
  api<ProjectDetails>("PATCH", `/api/projects/${id}`, change);
export const deleteProject = (id: number) => api<void>("DELETE", `/api/projects/${id}`);

export const listMembers = async (projectId: number) =>
  (await api<{ items: Member[] }>("GET", `/api/projects/${projectId}/members`)).items;
export const changeMember = (projectId: number, userId: number, role: ProjectRole) =>
  api<Member>("PATCH", `/api/projects/${projectId}/members/${userId}`, { role });
export const removeMember = (projectId: number, userId: number) =>
  api<void>("DELETE", `/api/projects/${projectId}/members/${userId}`);

/** Invitations not yet accepted, newest first. */
export const listPendingInvites = async (projectId: number) =>
  (await api<{ items: Invite[] }>("GET", `/api/invites?project_id=${projectId}`)).items.filter((i) => !i.accepted_at);
export const invite = (body: { project_id: number; email: string; role: ProjectRole; name?: string }) =>
  api<InviteResult>("POST", "/api/invites", body);
export const resendInvite = (id: number) => api<InviteResult>("POST", `/api/invites/${id}/resend`);
export const revokeInvite = (id: number) => api<void>("DELETE", `/api/invites/${id}`);
