/**
 * What the test server counts as the shape of a pod when it decides whether a recording may be
 * replayed for it: structure and privileges, not paths, args or images.
 */
import { loadRecording } from "../support/recordings.js";
import { shapeDifferences } from "../support/pod-shape.js";

const recordedPod = (name: string) => loadRecording(name).pods[0]!.object;
const noSecrets = { secretExists: () => false };

describe("pod shape", () => {
  test("the context mount moving from /workspace to /kaniko/buildcontext is the same shape", () => {
    const before = recordedPod("kaniko-success-cold");
    const after = recordedPod("kaniko-success-buildcontext");
    expect(JSON.stringify(after.spec)).not.toEqual(JSON.stringify(before.spec));
    expect(shapeDifferences(after, before, noSecrets)).toEqual([]);
  });

  test("images, args and mount paths are not the shape; privileges, stdin and volume kinds are", () => {
    const recorded = recordedPod("kaniko-success-cold");
    const pod = structuredClone(recorded);
    pod.spec.containers[0].image = "example/kaniko:other";
    pod.spec.containers[0].args = ["--whatever"];
    pod.spec.initContainers[0].volumeMounts[0].mountPath = "/elsewhere";
    expect(shapeDifferences(pod, recorded, noSecrets)).toEqual([]);

    pod.spec.containers[0].securityContext = {
      privileged: true,
      capabilities: { add: ["SYS_ADMIN"] },
    };
    pod.spec.initContainers[0].stdinOnce = false;
    pod.spec.volumes.push({ name: "cache", hostPath: { path: "/var/cache" } });
    expect(shapeDifferences(pod, recorded, noSecrets)).toEqual([
      'containers[build].securityContext.capabilities.add: submitted ["SYS_ADMIN"], recorded (unset)',
      "containers[build].securityContext.privileged: submitted true, recorded (unset)",
      "initContainers[context].stdinOnce: submitted (unset), recorded true",
      'volumes: submitted ["emptyDir","hostPath"], recorded ["emptyDir"]',
    ]);
  });

  test("each builder's recordings differ from Kaniko's: Buildah, Docker-in-Docker and rootless BuildKit", () => {
    const kaniko = recordedPod("kaniko-success-cold");
    expect(shapeDifferences(recordedPod("buildah-success-cold"), kaniko, noSecrets)).toEqual(
      expect.arrayContaining([
        'containers[build].securityContext.capabilities.add: submitted ["SETFCAP","SETGID","SETUID"], recorded (unset)',
      ]),
    );
    expect(shapeDifferences(recordedPod("dind-success-cold"), kaniko, noSecrets)).toEqual(
      expect.arrayContaining([
        "containers[build].securityContext.privileged: submitted true, recorded (unset)",
      ]),
    );
    expect(
      shapeDifferences(recordedPod("buildkit-rootless-success-cold"), kaniko, noSecrets),
    ).toEqual(
      expect.arrayContaining([
        "containers[build].securityContext.runAsUser: submitted 1000, recorded (unset)",
      ]),
    );
  });

  test("before 1.30 AppArmor was an annotation: the field with the same profile is the same shape", () => {
    const recorded = recordedPod("buildkit-rootless-success-cold");
    expect(
      recorded.metadata.annotations["container.apparmor.security.beta.kubernetes.io/build"],
    ).toBe("unconfined");
    const pod = structuredClone(recorded);
    delete pod.metadata.annotations;
    pod.spec.containers[0].securityContext.appArmorProfile = { type: "Unconfined" };
    expect(shapeDifferences(pod, recorded, noSecrets)).toEqual([]);
    pod.spec.containers[0].securityContext.appArmorProfile = { type: "RuntimeDefault" };
    expect(shapeDifferences(pod, recorded, noSecrets)).toEqual([
      "containers[build].securityContext.appArmorProfile.type: submitted RuntimeDefault, recorded Unconfined",
    ]);
  });

  test("a Secret volume the recording lacks is replayed only when its Secret exists", () => {
    const recorded = recordedPod("kaniko-success-cold");
    const pod = structuredClone(recorded);
    pod.spec.volumes.push({ name: "docker-config", secret: { secretName: "kib-x-registry" } });
    expect(shapeDifferences(pod, recorded, { secretExists: () => true })).toEqual([]);
    expect(shapeDifferences(pod, recorded, noSecrets)).toEqual([
      "volume docker-config mounts Secret kib-x-registry, which does not exist (a kubelet would not start the pod: FailedMount)",
    ]);
  });

  test("an emptyDir the recording lacks is the same shape; one with a sizeLimit is not", () => {
    const recorded = recordedPod("buildah-success-cold");
    const pod = structuredClone(recorded);
    pod.spec.volumes.push({ name: "containers", emptyDir: {} });
    expect(shapeDifferences(pod, recorded, noSecrets)).toEqual([]);
    pod.spec.volumes[pod.spec.volumes.length - 1].emptyDir = { sizeLimit: "1Gi" };
    expect(shapeDifferences(pod, recorded, noSecrets)).toEqual([
      'volumes: submitted ["emptyDir","emptyDir"], recorded ["emptyDir"]',
    ]);
  });
});
