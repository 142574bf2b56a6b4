/**
 * A submit's body as the use case takes it: the multipart form's text fields, or the JSON body,
 * each checked by the schema the OpenAPI document is made from.
 */
import { z } from 'zod';
import { JobOptions, SubmitForm, SubmitJson, invalid, optionsFromFields } from '@stemflow/contracts';
import type { Submission } from '../use-cases/submit-job.js';

export const zodMessage = (e: z.ZodError) => e.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ');

/** The multipart text fields → what was asked; every field checked, unknown ones refused. */
export function fromForm(body: unknown): Submission {
  const form = SubmitForm.safeParse(body ?? {});
  if (!form.success) throw invalid('INVALID_OPTIONS', zodMessage(form.error));
  const { callback_url, input_url, ...fields } = form.data;
  const opts = JobOptions.safeParse(optionsFromFields(fields));
  if (!opts.success) throw invalid('INVALID_OPTIONS', zodMessage(opts.error));
  return { options: opts.data, callbackUrl: callback_url, inputUrl: input_url };
}

/** The JSON body (an import by URL) → what was asked. */
export function fromJson(body: unknown): Submission {
  if (typeof (body as { input_url?: unknown } | null)?.input_url !== 'string') {
    throw invalid('MISSING_FILE', 'a JSON body names its input by URL in "input_url"; to upload a file, send multipart/form-data with the audio in the field "file"');
  }
  const parsed = SubmitJson.safeParse(body ?? {});
  if (!parsed.success) throw invalid('INVALID_OPTIONS', zodMessage(parsed.error));
  const { callback_url, input_url, ...fields } = parsed.data;
  // The options' own rules (residual needs other, …) on top of each field's type.
  const options = JobOptions.safeParse(fields);
  if (!options.success) throw invalid('INVALID_OPTIONS', zodMessage(options.error));
  return { options: options.data, callbackUrl: callback_url, inputUrl: input_url };
}
