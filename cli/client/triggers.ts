// What the CLI sends and reads of broker triggers: the body of POST /functions/NAME/triggers and a trigger
// as the API shows it (the stored record with its state), checked like every other reply.
import { z } from 'zod';
import { TriggerSchema, type TriggerType } from '../../protocol/db.js';

export const TriggerViewSchema = TriggerSchema.extend({ state: z.string() });
export type TriggerView = z.infer<typeof TriggerViewSchema>;

export interface TriggerInput {
  type: TriggerType;
  url: string;
  source: string;
  auth?: { username?: string; secret?: string };
  inFlight?: number;
  maxQueue?: number;
  maxBytes?: number;
  deadLetter?: 'list' | 'broker';
  dedupWindowS?: number;
  stream?: string;
  group?: string;
  paused?: boolean;
}
