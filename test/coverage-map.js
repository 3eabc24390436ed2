// tap coverage map: every test file counts coverage of the project's own
// source (not of scripts/ simulators, benches or the tests themselves).
export default function coverageMap() {
  return [/^(bin|lib|contract|device-profiles|gateway|hub|firmware-bridge)\/(?!.*\.test\.ts$)(?!.*\/test\/).*\.ts$/];
}
