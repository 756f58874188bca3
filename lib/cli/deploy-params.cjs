// osls loads variables computed in code from .js/.cjs files only (serverless.yml, custom.deploy):
// this hands the resolution to deploy-params.ts, where the checks live.
module.exports = async ({ resolveVariable }) =>
  (await import('./deploy-params.ts')).resolveDeployParams(resolveVariable)
