// Development: small and cheap (locally redundant storage, no zone redundancy, a low scale-out limit).
//   export AUTH_AUDIENCE=<client id of the simgate API app registration>
//   az deployment group create -g <group> -f infra/bicep/main.bicep -p infra/bicep/main.dev.bicepparam
using './main.bicep'

param name = 'simgate-dev'
param tags = {
  app: 'simgate'
  environment: 'dev'
}
param authAudience = readEnvironmentVariable('AUTH_AUDIENCE')
// Who may write the targets' secrets (export SIMGATE_SECRETS_OFFICER=$(az ad signed-in-user show --query id -o tsv)).
param secretsOfficerId = readEnvironmentVariable('SIMGATE_SECRETS_OFFICER', '')
param storageSku = 'Standard_LRS'
param zoneRedundant = false
param maximumInstanceCount = 40
param logRetentionDays = 30
// The cases name two targets, `cluster` and `local`; each reads its private key from the setting its key_setting names.
param sshKeys = [
  { setting: 'CLUSTER_SSH_KEY', secret: 'cluster-ssh-key' }
  { setting: 'LOCAL_SSH_KEY', secret: 'local-ssh-key' }
]
