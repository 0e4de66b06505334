/**
 * The point of initial impact: a vehicle outline seen from above (front at the top); a tap
 * stores `{ x, y, side }` with x, y in 0..1 of the outline (docs/document.md).
 */
import { impactSide } from './input-rules.js';

const SVG = 'http://www.w3.org/2000/svg';

export interface ImpactPoint {
  x: number;
  y: number;
  side?: string;
}

export function impactPicker(options: {
  id: string;
  label: string;
  colour: string;
  readOnly: () => boolean;
  onPick: (point: ImpactPoint) => void;
}): { element: SVGSVGElement; show: (point: ImpactPoint | undefined) => void } {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 100 200');
  svg.setAttribute('class', 'impact');
  svg.setAttribute('id', options.id);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', options.label);
  svg.innerHTML = `
    <rect x="14" y="8" width="72" height="184" rx="26" fill="${options.colour}" fill-opacity="0.25" stroke="#374151" stroke-width="3"/>
    <rect x="24" y="40" width="52" height="30" rx="6" fill="#bfdbfe" stroke="#374151"/>
    <rect x="24" y="130" width="52" height="26" rx="6" fill="#bfdbfe" stroke="#374151"/>
    <rect x="6" y="30" width="10" height="28" rx="3" fill="#374151"/><rect x="84" y="30" width="10" height="28" rx="3" fill="#374151"/>
    <rect x="6" y="142" width="10" height="28" rx="3" fill="#374151"/><rect x="84" y="142" width="10" height="28" rx="3" fill="#374151"/>
    <path d="M50 2 l-8 10 h16z" fill="#374151"/>`;
  const marker = document.createElementNS(SVG, 'circle');
  marker.setAttribute('r', '7');
  marker.setAttribute('fill', '#dc2626');
  marker.setAttribute('stroke', '#fff');
  marker.setAttribute('stroke-width', '2');
  marker.style.display = 'none';
  svg.appendChild(marker);
  svg.addEventListener('pointerdown', (event) => {
    if (options.readOnly()) return;
    const box = svg.getBoundingClientRect();
    const x = round((event.clientX - box.left) / box.width);
    const y = round((event.clientY - box.top) / box.height);
    options.onPick({ x, y, side: impactSide(x, y) });
  });
  return {
    element: svg,
    show(point) {
      if (!point || typeof point.x !== 'number' || typeof point.y !== 'number') {
        marker.style.display = 'none';
        svg.dataset.point = '';
        return;
      }
      marker.setAttribute('cx', String(point.x * 100));
      marker.setAttribute('cy', String(point.y * 200));
      marker.style.display = '';
      svg.dataset.point = `${point.x},${point.y},${point.side ?? ''}`;
    },
  };
}

function round(v: number): number {
  return Math.min(1, Math.max(0, Math.round(v * 1000) / 1000));
}
