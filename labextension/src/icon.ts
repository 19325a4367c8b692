import { LabIcon } from '@jupyterlab/ui-components';

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M3 13h4l2-6 4 12 2-6h6v-2h-4.6L13 5.7 9 17.3 8.4 11H3z"/>
</svg>`;

/** The "Sci Health" sidebar icon (a pulse line). */
export const sciHealthIcon = new LabIcon({ name: 'sci-ext:health', svgstr: svg });
