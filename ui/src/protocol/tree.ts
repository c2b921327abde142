// An extension's tree with an id index, and all-or-nothing application of keyed patches
// (docs/ui-protocol.md section 2).
//
// Trees are immutable values. A patch is applied to a draft: a changed node is copied together
// with the path from it to the root ("path copying"), so every subtree the patch did not touch
// keeps its identity — React.memo on a node then skips it. Nodes copied by the draft are owned by
// it and mutated in place by later operations of the same patch. The draft's index changes are
// an overlay over the committed index; a refused patch simply drops the draft: the committed
// tree and index were never touched.

import { DEFAULT_LIMITS, type JsonValue, type Limits, type PatchOp, type UINode } from "./types";
import { ProtocolError } from "./validate";

interface Entry {
  node: UINode;
  parent: string | null;
}

type Mutable = { -readonly [K in keyof UINode]: UINode[K] } & { children: UINode[] };

export class Tree {
  readonly root: UINode;
  private readonly index: Map<string, Entry>;
  private spent = false;
  /** Ids whose node was added, removed or copied by the patch that made this tree (null: a
   * tree made from a whole root). */
  changed: readonly string[] | null = null;

  private constructor(root: UINode, index: Map<string, Entry>) {
    this.root = root;
    this.index = index;
  }

  /** A tree from a validated root (see parseTree), reusing the identity of every subtree equal
   * to the same-id subtree of `previous` (so a snapshot of a mostly unchanged tree re-renders
   * only what changed). */
  static from(root: UINode, previous?: Tree | null): Tree {
    const shared = previous ? share(root, previous) : root;
    const index = new Map<string, Entry>();
    const walk = (n: UINode, parent: string | null) => {
      index.set(n.id, { node: n, parent });
      for (const c of n.children) walk(c, n.id);
    };
    walk(shared, null);
    return new Tree(shared, index);
  }

  get size(): number {
    return this.index.size;
  }

  get(id: string): UINode | undefined {
    if (this.spent) throw new Error("Tree.get on a spent tree");
    return this.index.get(id)?.node;
  }

  parentOf(id: string): string | null | undefined {
    if (this.spent) throw new Error("Tree.parentOf on a spent tree");
    return this.index.get(id)?.parent;
  }

  /** Applies `ops` in order, all or nothing. On success returns the new tree and this one is
   * spent (see below); on error throws ProtocolError naming the operation and why, and this
   * tree is unchanged and still usable. */
  apply(ops: readonly PatchOp[], limits: Limits = DEFAULT_LIMITS): Tree {
    if (this.spent) throw new Error("Tree.apply on a spent tree");
    if (ops.length === 0) return this;
    const d = new Draft(this, limits);
    ops.forEach((op, i) => {
      try {
        d.apply(op);
      } catch (e) {
        if (e instanceof ProtocolError) throw new ProtocolError(`operation ${i} (${op.op}): ${e.message}`);
        throw e;
      }
    });
    // Commit: the draft's overlay is written into the index, which moves to the new tree.
    // Copying the index would cost O(tree) per patch; this tree is spent instead (its root is
    // still a valid immutable value, but it can no longer look nodes up or apply patches).
    const index = this.index;
    for (const [id, e] of d.overlay) {
      if (e === null) index.delete(id);
      else index.set(id, e);
    }
    this.spent = true;
    const next = new Tree(d.root, index);
    next.changed = [...d.overlay.keys()];
    return next;
  }

  // internal: used by Draft
  /** @internal */ entry(id: string): Entry | undefined {
    return this.index.get(id);
  }
}

class Draft {
  root: UINode;
  readonly overlay = new Map<string, Entry | null>();
  private readonly owned = new WeakSet<UINode>();
  private count: number;

  constructor(
    private readonly base: Tree,
    private readonly limits: Limits,
  ) {
    this.root = base.root;
    this.count = base.size;
  }

  private entry(id: string): Entry | undefined {
    const o = this.overlay.get(id);
    if (o !== undefined) return o ?? undefined;
    return this.base.entry(id);
  }

  private need(id: string): Entry {
    const e = this.entry(id);
    if (!e) throw new ProtocolError(`unknown node ${JSON.stringify(id)}`);
    return e;
  }

  private depth(id: string): number {
    let d = 0;
    for (let cur: string | null = id; cur !== null; cur = this.need(cur).parent) d++;
    return d;
  }

  /** The node `id` as a copy owned by this draft, wired into copies of its ancestors. */
  private own(id: string): Mutable {
    const e = this.need(id);
    if (this.owned.has(e.node)) return e.node as Mutable;
    const copy: Mutable = { ...e.node, children: e.node.children.slice() };
    this.owned.add(copy);
    this.overlay.set(id, { node: copy, parent: e.parent });
    if (e.parent === null) this.root = copy;
    else {
      const p = this.own(e.parent);
      const i = p.children.findIndex((c) => c.id === id);
      p.children[i] = copy;
    }
    return copy;
  }

  /** Registers the subtree `node` under `parent`; ids must be new. Returns its height. */
  private add(node: UINode, parent: string | null): number {
    const ids: Array<[UINode, string | null]> = [];
    let height = 0;
    const walk = (n: UINode, p: string | null, h: number) => {
      if (this.entry(n.id)) throw new ProtocolError(`node id ${JSON.stringify(n.id)} is already in the tree`);
      ids.push([n, p]);
      if (h > height) height = h;
      for (const c of n.children) walk(c, n.id, h + 1);
    };
    walk(node, parent, 1);
    for (const [n, p] of ids) this.overlay.set(n.id, { node: n, parent: p });
    this.count += ids.length;
    return height;
  }

  /** Unregisters the subtree rooted at `node`. */
  private drop(node: UINode) {
    const walk = (n: UINode) => {
      this.overlay.set(n.id, null);
      this.count--;
      for (const c of n.children) walk(c);
    };
    walk(node);
  }

  private checkBounds(height: number, parent: string | null, id: string) {
    const depth = (parent === null ? 0 : this.depth(parent)) + height;
    if (depth > this.limits.maxDepth)
      throw new ProtocolError(`node ${JSON.stringify(id)}: the tree's depth would be ${depth}, over the limit of ${this.limits.maxDepth}`);
    if (this.count > this.limits.maxNodes)
      throw new ProtocolError(`node ${JSON.stringify(id)}: the tree would have ${this.count} nodes, over the limit of ${this.limits.maxNodes}`);
  }

  private checkIndex(index: number, len: number, parent: string) {
    if (index > len)
      throw new ProtocolError(`index ${index} is out of range: node ${JSON.stringify(parent)} has ${len} children`);
  }

  apply(op: PatchOp) {
    switch (op.op) {
      case "props": {
        const n = this.own(op.id);
        const next: Record<string, JsonValue> = {};
        const unset = new Set(op.unset);
        for (const [k, v] of Object.entries(n.props)) if (!(k in op.set) && !unset.has(k)) def(next, k, v);
        for (const [k, v] of Object.entries(op.set)) if (!unset.has(k)) def(next, k, v);
        n.props = next;
        return;
      }
      case "events": {
        const n = this.own(op.id);
        n.events = op.events.slice();
        return;
      }
      case "insert": {
        const p = this.own(op.parent);
        this.checkIndex(op.index, p.children.length, op.parent);
        const height = this.add(op.node, op.parent);
        p.children.splice(op.index, 0, op.node);
        this.checkBounds(height, op.parent, op.node.id);
        return;
      }
      case "remove": {
        const e = this.need(op.id);
        if (e.parent === null) throw new ProtocolError(`node ${JSON.stringify(op.id)} is the root, which cannot be removed`);
        const p = this.own(e.parent);
        p.children.splice(p.children.findIndex((c) => c.id === op.id), 1);
        this.drop(e.node);
        return;
      }
      case "move": {
        const e = this.need(op.id);
        if (e.parent === null) throw new ProtocolError(`node ${JSON.stringify(op.id)} is the root, which cannot be moved`);
        this.need(op.parent);
        for (let cur: string | null = op.parent; cur !== null; cur = this.need(cur).parent)
          if (cur === op.id)
            throw new ProtocolError(`parent ${JSON.stringify(op.parent)} is inside the moved subtree of ${JSON.stringify(op.id)}`);
        const from = this.own(e.parent);
        from.children.splice(from.children.findIndex((c) => c.id === op.id), 1);
        const to = this.own(op.parent);
        this.checkIndex(op.index, to.children.length, op.parent);
        const node = this.need(op.id).node;
        to.children.splice(op.index, 0, node);
        this.overlay.set(op.id, { node, parent: op.parent });
        this.checkBounds(height(node), op.parent, op.id);
        return;
      }
      case "replace": {
        const e = this.need(op.id);
        this.drop(e.node);
        if (e.parent === null) {
          this.root = op.node;
        } else {
          const p = this.own(e.parent);
          p.children[p.children.findIndex((c) => c.id === op.id)] = op.node;
        }
        const h = this.add(op.node, e.parent);
        this.checkBounds(h, e.parent, op.node.id);
        return;
      }
    }
  }
}

function def(o: Record<string, JsonValue>, k: string, v: JsonValue) {
  // defineProperty: a "__proto__" key is data, not the prototype.
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function height(n: UINode): number {
  let h = 0;
  for (const c of n.children) h = Math.max(h, height(c));
  return h + 1;
}

/** `next` with every subtree deep-equal to the same-id subtree of `prev` replaced by prev's, and
 * equal props/events objects of same-id nodes reused (so a snapshot re-renders only what
 * changed). */
function share(next: UINode, prev: Tree): UINode {
  const children = next.children.map((c) => share(c, prev));
  const old = prev.get(next.id);
  let props = next.props;
  let events = next.events;
  if (old && old.type === next.type) {
    if (jsonEqual(old.props, next.props)) props = old.props;
    if (eqArr(old.events, next.events)) events = old.events;
    if (props === old.props && events === old.events && sameRefs(children, old.children)) return old;
  }
  if (props === next.props && events === next.events && sameRefs(children, next.children)) return next;
  return { id: next.id, type: next.type, props, events, children };
}

function sameRefs(a: readonly UINode[], b: readonly UINode[]) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function eqArr(a: readonly string[], b: readonly string[]) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}
