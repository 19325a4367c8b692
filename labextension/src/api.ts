/**
 * The one request of the extension: `GET <base>/sci/api/status` through
 * `ServerConnection` (so Jupyter's auth token and XSRF handling apply).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { NotEnabledError } from './poller';
import { IStatus } from './types';

/** The status URL under the server's base URL. */
export function statusUrl(settings: ServerConnection.ISettings): string {
  return URLExt.join(settings.baseUrl, 'sci', 'api', 'status');
}

/**
 * Fetches the status.  Throws `NotEnabledError` on 404 (the server extension
 * is not enabled), `ServerConnection.ResponseError` on other HTTP errors and
 * `ServerConnection.NetworkError` when the server cannot be reached.
 */
export async function fetchStatus(
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<IStatus> {
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(statusUrl(settings), { cache: 'no-store' }, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  if (response.status === 404) {
    throw new NotEnabledError();
  }
  if (!response.ok) {
    throw new ServerConnection.ResponseError(
      response,
      `GET /sci/api/status answered ${response.status} ${response.statusText}`.trim()
    );
  }
  const body = (await response.json()) as IStatus;
  if (typeof body !== 'object' || body === null || typeof body.status !== 'string') {
    throw new Error('GET /sci/api/status: the answer is not a sci_ext status object');
  }
  return body;
}
