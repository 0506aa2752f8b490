/** A local stand-in for api.github.com: issue comments (paginated) and container package versions. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeComment {
  id: number;
  body: string;
  user: { login: string; type: string };
}

export interface FakeVersion {
  id: number;
  name: string;
  metadata: { package_type: "container"; container: { tags: string[] } };
}

export interface RecordedRequest {
  method: string;
  path: string;
  authorization?: string;
  body?: unknown;
}

export interface FakeGitHub {
  baseUrl: string;
  comments: FakeComment[];
  /** Packages by owner kind and "owner/package". */
  packages: { org: Map<string, FakeVersion[]>; user: Map<string, FakeVersion[]> };
  requests: RecordedRequest[];
  /** Answer writes to comments with this status (403: token lacks pull-requests: write). */
  commentWriteStatus?: number;
  /** Answer package version DELETEs with this status. */
  packageDeleteStatus?: number;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString();
  return text ? JSON.parse(text) : undefined;
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify(body));
}

const notAccessible = {
  message: "Resource not accessible by integration",
  documentation_url: "https://docs.github.com/rest",
};

export async function startFakeGitHub(): Promise<FakeGitHub> {
  let nextId = 1000;
  const state: Omit<FakeGitHub, "baseUrl" | "close"> = {
    comments: [],
    packages: { org: new Map(), user: new Map() },
    requests: [],
  };
  let baseUrl = "";

  const paginate = (res: ServerResponse, url: URL, items: unknown[]): void => {
    const perPage = Number(url.searchParams.get("per_page") ?? 30);
    const page = Number(url.searchParams.get("page") ?? 1);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const headers: Record<string, string> = {};
    if (page < last) {
      const next = new URL(url.toString());
      next.searchParams.set("page", String(page + 1));
      const lastUrl = new URL(url.toString());
      lastUrl.searchParams.set("page", String(last));
      headers.Link = `<${baseUrl}${next.pathname}${next.search}>; rel="next", <${baseUrl}${lastUrl.pathname}${lastUrl.search}>; rel="last"`;
    }
    json(res, 200, items.slice((page - 1) * perPage, page * perPage), headers);
  };

  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "http://localhost");
      const body = await readBody(req);
      const method = req.method ?? "GET";
      state.requests.push({
        method,
        path: url.pathname + url.search,
        authorization: req.headers.authorization,
        body,
      });
      let m: RegExpExecArray | null;

      if ((m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/.exec(url.pathname))) {
        if (method === "GET") return paginate(res, url, state.comments);
        if (method === "POST") {
          if (fake.commentWriteStatus) return json(res, fake.commentWriteStatus, notAccessible);
          const comment = {
            id: nextId++,
            body: (body as { body: string }).body,
            user: { login: "github-actions[bot]", type: "Bot" },
          };
          state.comments.push(comment);
          return json(res, 201, {
            ...comment,
            html_url: `https://github.com/${m[1]}/${m[2]}/pull/${m[3]}#issuecomment-${comment.id}`,
          });
        }
      }
      if (
        (m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)$/.exec(url.pathname)) &&
        method === "PATCH"
      ) {
        if (fake.commentWriteStatus) return json(res, fake.commentWriteStatus, notAccessible);
        const comment = state.comments.find((c) => c.id === Number(m![3]));
        if (!comment) return json(res, 404, { message: "Not Found" });
        comment.body = (body as { body: string }).body;
        return json(res, 200, {
          ...comment,
          html_url: `https://github.com/${m[1]}/${m[2]}/pull/1#issuecomment-${comment.id}`,
        });
      }
      if (
        (m = /^\/(orgs|users)\/([^/]+)\/packages\/container\/([^/]+)\/versions(?:\/(\d+))?$/.exec(
          url.pathname,
        ))
      ) {
        const kind = m[1] === "orgs" ? "org" : "user";
        const key = `${m[2]}/${decodeURIComponent(m[3]!)}`;
        const versions = state.packages[kind].get(key);
        if (!versions) return json(res, 404, { message: "Package not found." });
        if (method === "GET" && !m[4]) return paginate(res, url, versions);
        if (method === "DELETE" && m[4]) {
          if (fake.packageDeleteStatus) return json(res, fake.packageDeleteStatus, notAccessible);
          const i = versions.findIndex((v) => v.id === Number(m![4]));
          if (i < 0) return json(res, 404, { message: "Not Found" });
          versions.splice(i, 1);
          res.writeHead(204).end();
          return;
        }
      }
      json(res, 404, { message: "Not Found" });
    })().catch((error: unknown) => json(res, 500, { message: String(error) }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const fake: FakeGitHub = Object.assign(state, {
    baseUrl,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
  return fake;
}
