/**
 * The pack views' part of one ingest: fold the batch's new events with the
 * engine, honouring rebuilds in progress, and schedule a rebuild when a
 * view's definition changed (functions/rebuild.ts).
 */
import type { MutationCtx } from "../_generated/server";
import { afterIngest, viewState } from "../rebuild";
import { Engine, type StoredEvent } from "./engine";

/**
 * Folds `events` (new, in seq order) into the views. `folded`: the highest
 * seq the origin held before this batch; an event below it arrived late and
 * its rows are re-folded in seq order.
 */
export async function foldBatch(ctx: MutationCtx, events: readonly StoredEvent[], folded: number): Promise<void> {
  const state = await viewState(ctx);
  // A deployment that holds nothing yet builds its views from this batch on.
  const fresh = state.defs.length === 0 && (await ctx.db.query("origins").first()) === null;
  const engine = new Engine(ctx, state.folds);
  await engine.prefetch(events);
  for (const event of events) await engine.fold(event, event.seq < folded);
  await engine.refold();
  await engine.flush();
  await afterIngest(ctx, state, engine.overflow, fresh);
}
