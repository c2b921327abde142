export type Tone = "success" | "warning" | "error" | "default";

/** Badge tone of a lifecycle state: HEALTHY green; CRASHED/FAILED red; on the way up or down
 * amber; CREATED/TERMINATED/unknown grey. */
export function stateTone(state: string | null | undefined): Tone {
  switch (state) {
    case "HEALTHY":
      return "success";
    case "CRASHED":
    case "FAILED":
      return "error";
    case "STARTING":
    case "RUNNING":
    case "UPDATING":
    case "STOPPING":
      return "warning";
    default:
      return "default";
  }
}
