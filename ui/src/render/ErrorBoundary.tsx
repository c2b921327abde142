import { Component, type ErrorInfo, type ReactNode } from "react";

interface Props {
  /** Changing it clears a caught error (e.g. the extension's next tree). */
  resetKey?: unknown;
  label: string;
  children: ReactNode;
}
interface State {
  error: Error | null;
  key: unknown;
}

/** Per extension panel: a component that throws takes down its panel, not the app. */
export class ErrorBoundary extends Component<Props, State> {
  state: State = { error: null, key: this.props.resetKey };

  static getDerivedStateFromProps(props: Props, state: State): Partial<State> | null {
    if (props.resetKey !== state.key) return { error: null, key: props.resetKey };
    return null;
  }

  static getDerivedStateFromError(error: Error): Partial<State> {
    return { error };
  }

  componentDidCatch(error: Error, info: ErrorInfo) {
    console.error(`[symphony] ${this.props.label} failed to render:`, error, info.componentStack);
  }

  render() {
    if (this.state.error)
      return (
        <div role="alert" data-render-error="" className="rounded-lg border border-destructive/50 bg-destructive/10 p-4 text-sm">
          <div className="font-semibold text-destructive">{this.props.label} failed to render</div>
          <pre className="mt-2 whitespace-pre-wrap font-mono text-xs text-muted-foreground">{String(this.state.error.message)}</pre>
        </div>
      );
    return this.props.children;
  }
}
