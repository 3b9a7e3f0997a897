/** fast-check for the property tests. */
export { default } from 'fast-check';
