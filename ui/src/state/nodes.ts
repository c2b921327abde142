// Per-node subscriptions to one extension's tree. The engine applies patches to the live tree as
// frames arrive and calls publish() once per animation frame: only the listeners of nodes the
// patches touched are told, and NodeView (render/NodeView.tsx) re-renders a node only when its
// own fields (type, props, events, child ids) changed — so a props patch re-renders one node.

import type { UINode } from "../protocol/types";
import type { Tree } from "../protocol/tree";

export class NodeSource {
  private tree: Tree | null = null;
  private listeners = new Map<string, Set<() => void>>();
  private changed = new Set<string>();
  private all = false;

  /** The live tree (may be ahead of the last publish; React re-reads at the next one). */
  get(id: string): UINode | undefined {
    return this.tree?.get(id);
  }

  get root(): UINode | null {
    return this.tree?.root ?? null;
  }

  /** The engine replaced the tree (after a patch: `tree.changed` names the touched ids). */
  set(tree: Tree | null) {
    if (tree && tree.changed && !this.all) for (const id of tree.changed) this.changed.add(id);
    else this.all = true;
    this.tree = tree;
  }

  subscribe(id: string, cb: () => void): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(cb);
    return () => {
      set!.delete(cb);
      if (set!.size === 0 && this.listeners.get(id) === set) this.listeners.delete(id);
    };
  }

  /** Tells the listeners of every node changed since the last publish. */
  publish() {
    if (this.all) {
      this.all = false;
      this.changed.clear();
      for (const set of [...this.listeners.values()]) for (const cb of [...set]) cb();
      return;
    }
    if (this.changed.size === 0) return;
    const ids = [...this.changed];
    this.changed.clear();
    for (const id of ids) {
      const set = this.listeners.get(id);
      if (set) for (const cb of [...set]) cb();
    }
  }
}

/** Whether two versions of a node render the same for the node itself: the same type, props
 * and events (by identity: patch application keeps them when untouched) and the same child ids
 * in the same order. The children's own changes are their own NodeViews' business. */
export function sameOwn(a: UINode, b: UINode): boolean {
  if (a === b) return true;
  if (a.id !== b.id || a.type !== b.type || a.props !== b.props || a.events !== b.events) return false;
  if (a.children.length !== b.children.length) return false;
  for (let i = 0; i < a.children.length; i++) if (a.children[i].id !== b.children[i].id) return false;
  return true;
}
