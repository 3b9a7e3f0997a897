// The CHANGELOG lines changesets writes (`.changeset/config.json` → "changelog"). Entries as
// changesets' default generator writes them; dependency lines name only dependencies that had a
// release before this one: a dependency's first release (from 0.0.0) is not news to anyone, and
// in the first release of the whole family every dependent would otherwise get an
// "Updated dependencies" entry and nothing else to say with it.
const defaults = require('@changesets/cli/changelog').default;

/** @type {import('@changesets/types').ChangelogFunctions['getDependencyReleaseLine']} */
async function getDependencyReleaseLine(_changesets, dependenciesUpdated) {
  const updated = dependenciesUpdated.filter((d) => d.oldVersion !== '0.0.0');
  if (updated.length === 0) return '';
  return `- Updated dependencies: ${updated.map((d) => `\`${d.name}@${d.newVersion}\``).join(', ')}`;
}

module.exports = { default: { getReleaseLine: defaults.getReleaseLine, getDependencyReleaseLine } };
