/**
 * RBAC as the API server evaluates it, over the rules the project ships in deploy/rbac.yaml: a
 * request is allowed when a rule of a Role bound in its namespace, or of a ClusterRole, names its
 * API group, its resource (with subresource, "pods/log") and its verb. Nothing else is allowed.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** Who a token is: its user name and what it may do. */
export interface Grants {
  /** Rules of the Role (bound in every namespace the test cluster has). */
  namespaced: PolicyRule[];
  /** Rules of ClusterRoles (cluster-wide). */
  cluster: PolicyRule[];
}

export interface ShippedRbac {
  serviceAccount: { name: string; namespace: string };
  role: PolicyRule[];
  clusterRole: PolicyRule[];
}

/** deploy/rbac.yaml beside this module's repository (or the working directory's, when bundled). */
export function shippedRbacPath(): string {
  const beside = fileURLToPath(new URL("../../deploy/rbac.yaml", import.meta.url));
  return existsSync(beside) ? beside : join(process.cwd(), "deploy/rbac.yaml");
}

/** Reads deploy/rbac.yaml: the ServiceAccount, its Role's rules and the optional ClusterRole's rules. */
export function loadShippedRbac(path = shippedRbacPath()): ShippedRbac {
  const docs = parseAllDocuments(readFileSync(path, "utf8")).map((d) => d.toJS() as any);
  const sa = docs.find((d) => d?.kind === "ServiceAccount");
  const role = docs.find((d) => d?.kind === "Role");
  const clusterRole = docs.find((d) => d?.kind === "ClusterRole");
  const binding = docs.find((d) => d?.kind === "RoleBinding");
  if (!sa || !role || !binding)
    throw new Error(`${path}: needs a ServiceAccount, Role, RoleBinding`);
  if (binding.roleRef?.name !== role.metadata.name)
    throw new Error(`${path}: the RoleBinding does not bind the Role`);
  const rules = (r: any): PolicyRule[] =>
    (r?.rules ?? []).map((x: any) => ({
      apiGroups: x.apiGroups ?? [],
      resources: x.resources ?? [],
      verbs: x.verbs ?? [],
      ...(x.resourceNames ? { resourceNames: x.resourceNames } : {}),
    }));
  return {
    serviceAccount: { name: sa.metadata.name, namespace: sa.metadata.namespace },
    role: rules(role),
    clusterRole: rules(clusterRole),
  };
}

export interface RequestAttributes {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

function ruleAllows(rule: PolicyRule, a: RequestAttributes): boolean {
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const verbOk = rule.verbs.includes("*") || rule.verbs.includes(a.verb);
  const groupOk = rule.apiGroups.includes("*") || rule.apiGroups.includes(a.group);
  const resourceOk = rule.resources.some(
    (r) =>
      r === "*" ||
      r === resource ||
      (a.subresource !== undefined && (r === `*/${a.subresource}` || r === `${a.resource}/*`)),
  );
  // resourceNames limit a rule to named objects: a list, watch or create has no name to match.
  const nameOk =
    !rule.resourceNames?.length || (a.name !== undefined && rule.resourceNames.includes(a.name));
  return verbOk && groupOk && resourceOk && nameOk;
}

export function allows(grants: Grants, a: RequestAttributes): boolean {
  if (grants.cluster.some((r) => ruleAllows(r, a))) return true;
  // A Role only ever applies inside a namespace: cluster-scoped requests need a ClusterRole.
  return a.namespace !== undefined && grants.namespaced.some((r) => ruleAllows(r, a));
}

/** Everything (cluster-admin). */
export const ADMIN: Grants = {
  namespaced: [],
  cluster: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }],
};

/** The shipped Role (and, unless told otherwise, the optional ClusterRole). */
export function shippedGrants(opts: { clusterRole?: boolean } = {}): {
  user: string;
  grants: Grants;
} {
  const rbac = loadShippedRbac();
  return {
    user: `system:serviceaccount:${rbac.serviceAccount.namespace}:${rbac.serviceAccount.name}`,
    grants: {
      namespaced: rbac.role,
      cluster: opts.clusterRole === false ? [] : rbac.clusterRole,
    },
  };
}
