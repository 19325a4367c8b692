/**
 * sci-ext: JupyterLab 4 frontend of sci_ext.
 *
 * One plugin: polls `/sci/api/status` (ServerConnection, `@lumino/polling`
 * with backoff, standby while the page is hidden), shows a status-bar item and
 * a left-sidebar "Sci Health" panel.  The refresh interval is a setting.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ServerConnection } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';

import { fetchStatus } from './api';
import { PANEL_ID, SciHealthPanel } from './panel';
import { intervalFromSetting, StatusPoller } from './poller';
import { SciStatusItem } from './statusbar';

export const PLUGIN_ID = 'sci-ext:plugin';
const COMMAND_OPEN = 'sci-ext:open-panel';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'sci_ext status-bar item and Sci Health panel',
  autoStart: true,
  optional: [ISettingRegistry, IStatusBar],
  activate: (app: JupyterFrontEnd, registry: ISettingRegistry | null, statusBar: IStatusBar | null) => {
    const serverSettings = ServerConnection.makeSettings();
    const poller = new StatusPoller({
      fetch: () => fetchStatus(serverSettings),
      intervalMs: intervalFromSetting(5),
      maxIntervalMs: 60_000,
      standby: 'when-hidden'
    });

    const panel = new SciHealthPanel(poller);
    app.shell.add(panel, 'left', { rank: 900 });

    app.commands.addCommand(COMMAND_OPEN, {
      label: 'Open Sci Health panel',
      caption: 'sci_ext health, resources, errors and alerts',
      execute: () => {
        app.shell.activateById(PANEL_ID);
      }
    });

    if (statusBar) {
      const item = new SciStatusItem(poller, () => void app.commands.execute(COMMAND_OPEN));
      statusBar.registerStatusItem('sci-ext:status', {
        item,
        align: 'left',
        rank: 900,
        isActive: () => true
      });
    }

    // Lumino stands by while hidden; when the page shows again, refresh at once
    // instead of waiting for the next scheduled tick.
    const onVisibility = (): void => {
      if (document.visibilityState === 'visible' && !poller.isDisposed) {
        void poller.refresh();
      }
    };
    document.addEventListener('visibilitychange', onVisibility);

    const applySettings = (settings: ISettingRegistry.ISettings): void => {
      const interval = intervalFromSetting(settings.get('refreshInterval').composite);
      const max = intervalFromSetting(settings.get('maxBackoffInterval').composite, 60);
      poller.setInterval(interval, max);
    };

    const start = (): void => {
      void poller.start();
      console.debug('sci-ext activated');
    };

    if (registry) {
      void Promise.all([registry.load(PLUGIN_ID), app.restored])
        .then(([settings]) => {
          applySettings(settings);
          settings.changed.connect(applySettings);
        })
        .catch(reason => {
          console.warn('sci-ext: settings not loaded, polling every 5 s', reason);
        })
        .then(start);
    } else {
      void app.restored.then(start);
    }
  }
};

export default plugin;
