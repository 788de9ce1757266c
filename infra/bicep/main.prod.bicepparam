// Production: geo- and zone-redundant storage, instances spread over availability zones, a year of logs.
//   export AUTH_AUDIENCE=<client id of the simgate API app registration>
//   az deployment group create -g <group> -f infra/bicep/main.bicep -p infra/bicep/main.prod.bicepparam
using './main.bicep'

param name = 'simgate'
param tags = {
  app: 'simgate'
  environment: 'prod'
}
param authAudience = readEnvironmentVariable('AUTH_AUDIENCE')
// Who may write the targets' secrets (export SIMGATE_SECRETS_OFFICER=$(az ad signed-in-user show --query id -o tsv)).
param secretsOfficerId = readEnvironmentVariable('SIMGATE_SECRETS_OFFICER', '')
param storageSku = 'Standard_GZRS'
param zoneRedundant = true
param maximumInstanceCount = 100
param logRetentionDays = 365
// The cases name two targets, `cluster` and `local`; each reads its private key from the setting its key_setting names.
param sshKeys = [
  { setting: 'CLUSTER_SSH_KEY', secret: 'cluster-ssh-key' }
  { setting: 'LOCAL_SSH_KEY', secret: 'local-ssh-key' }
]
