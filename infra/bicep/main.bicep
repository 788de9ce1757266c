// simgate on Azure: one Flex Consumption Function App (Python 3.11, Linux), its storage account, a user-assigned
// managed identity holding least-privilege data roles, a Key Vault (RBAC) for the simulator targets, and
// Application Insights on Log Analytics. No storage key, connection string with a key, or secret appears here:
// storage is reached with the identity, and secrets are Key Vault references.
//
// Deploy into an existing resource group (docs/deploy.md):
//   az deployment group create -g <group> -f infra/bicep/main.bicep -p infra/bicep/main.dev.bicepparam
//
// Every app setting the code reads is set below (tests/deploy/test_settings.py checks it against the sources).

targetScope = 'resourceGroup'

// ---- Naming and placement ----

@description('Environment name, e.g. simgate-dev: lower-case letters, digits and dashes; resource names derive from it.')
@minLength(3)
@maxLength(20)
param name string

@description('Azure region (one that offers Flex Consumption).')
param location string = resourceGroup().location

@description('Tags for every resource.')
param tags object = {}

// ---- Users' tokens (Entra ID): AUTH_* ----

@description('AUTH_AUDIENCE: the aud claim of user tokens, i.e. the API app registration\'s client id (v2 tokens).')
@minLength(1)
param authAudience string

@description('AUTH_ISSUER: the iss claim of user tokens (the tenant\'s v2.0 issuer unless set).')
param authIssuer string = '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'

@description('AUTH_JWKS: where the token signing keys are published (the tenant\'s v2.0 keys unless set).')
param authJwks string = '${environment().authentication.loginEndpoint}${tenant().tenantId}/discovery/v2.0/keys'

@description('AUTH_ADMIN_ROLE: the app role (in the roles claim) that may see every user\'s jobs.')
param authAdminRole string = 'simgate.admin'

@description('AUTH_UI_CLIENT_ID: client id of the app registration the browser UI signs in with (a single-page application; the API\'s own registration will do). Empty: the UI has no sign-in.')
param uiClientId string = authAudience

@description('AUTH_UI_AUTHORITY: where the UI signs in; the issuer\'s tenant unless set.')
param uiAuthority string = ''

@description('AUTH_UI_SCOPE: the scope the UI asks tokens for; the API\'s ".default" unless set.')
param uiScope string = ''

@description('AUTH_REQUIRED_SCOPE: the delegated scope user tokens must carry in scp ("*": any, which refuses app-only tokens; empty: only idtyp=app tokens are refused).')
param authRequiredScope string = '*'

@description('AUTH_LEEWAY_SECONDS: clock skew allowed on token expiry.')
@minValue(0)
@maxValue(300)
param authLeewaySeconds int = 30

// ---- Simulator targets (Key Vault) ----

@description('Key Vault secret holding SIMGATE_TARGETS: the JSON object of targets, with their pinned host keys (known_hosts).')
param targetsSecretName string = 'simgate-targets'

@description('Object id of the user or group that puts the targets\' secrets into Key Vault (role Key Vault Secrets Officer on the vault); nobody if empty.')
param secretsOfficerId string = ''

@description('SSH private keys: one { setting, secret } per key. Each becomes the app setting `setting` (the name a target\'s key_setting gives), a Key Vault reference to the secret `secret`.')
param sshKeys array = []

// ---- Jobs ----

@description('SIMGATE_DOWNLOAD_MINUTES: lifetime of a download URL (read SAS).')
@minValue(1)
@maxValue(60)
param downloadMinutes int = 10

@description('SIMGATE_UPLOAD_MINUTES: lifetime of a job\'s upload grant (renewed while it finalizes).')
@minValue(1)
@maxValue(60)
param uploadMinutes int = 15

@description('SIMGATE_RECONCILE_SCHEDULE: NCRONTAB schedule of the lost-job reconciler (every five minutes).')
param reconcileSchedule string = '0 */5 * * * *'

@description('SIMGATE_LOST_AFTER_MINUTES: an active job silent this long is checked with its scheduler.')
@minValue(0)
param lostAfterMinutes int = 15

@description('SIMGATE_RESEND_AFTER_SECONDS: a SUBMITTED job no dispatcher has claimed, or a CANCELLING one, waiting this long gets its queue message again from the reconciler (a message lost in a crash).')
@minValue(1)
param resendAfterSeconds int = 300

@description('SIMGATE_STUDY_MAX_RUNS: the most runs one study may make.')
@minValue(1)
@maxValue(100000)
param studyMaxRuns int = 1000

@description('SIMGATE_CALLBACK_URL: the https URL simulators report to; the app\'s default host name unless set (e.g. a custom domain).')
param callbackUrl string = ''

// ---- Sizing ----

@description('Storage replication (see modules/storage.bicep).')
@allowed([
  'Standard_GZRS'
  'Standard_RAGZRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_LRS'
])
param storageSku string = 'Standard_GZRS'

@description('Spread the app over availability zones (needs zone-redundant storage: ZRS or GZRS).')
param zoneRedundant bool = false

@description('Most instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory of each instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Days Log Analytics keeps logs and telemetry.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 90

// ---- Names ----

var token = toLower(uniqueString(resourceGroup().id, name))
var compactName = toLower(replace(name, '-', ''))
var functionAppName = '${name}-${take(token, 6)}'
var storageAccountName = take('st${compactName}${token}', 24)
var keyVaultName = take('kv${compactName}${token}', 24)
var deploymentContainerName = 'app-package'
var jobsTableName = 'jobs'
var studiesTableName = 'studies'
var dispatchQueueName = 'dispatch' // core/config.py DISPATCH_QUEUE; the host adds "dispatch-poison"
var appUrl = empty(callbackUrl) ? 'https://${functionAppName}.azurewebsites.net' : callbackUrl

// ---- Resources ----

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: 'id-${name}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    workspaceName: 'log-${name}'
    appInsightsName: 'appi-${name}'
    location: location
    tags: tags
    retentionDays: logRetentionDays
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: storageAccountName
    location: location
    tags: tags
    skuName: storageSku
    deploymentContainerName: deploymentContainerName
    jobsTableName: jobsTableName
    studiesTableName: studiesTableName
    dispatchQueueName: dispatchQueueName
    workspaceId: monitoring.outputs.workspaceId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: keyVaultName
    location: location
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    secretsOfficerId: secretsOfficerId
  }
}

// ---- App settings: everything the code and the host read ----

var appSettings = concat([
  // Host storage and the app's own storage clients, identity-based (no AzureWebJobsStorage connection string).
  { name: 'AzureWebJobsStorage__accountName', value: storage.outputs.name }
  { name: 'AzureWebJobsStorage__blobServiceUri', value: storage.outputs.blobEndpoint }
  { name: 'AzureWebJobsStorage__queueServiceUri', value: storage.outputs.queueEndpoint }
  { name: 'AzureWebJobsStorage__tableServiceUri', value: storage.outputs.tableEndpoint }
  { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
  { name: 'AzureWebJobsStorage__clientId', value: identity.outputs.clientId }
  { name: 'AZURE_CLIENT_ID', value: identity.outputs.clientId }
  { name: 'SIMGATE_STORAGE_CREDENTIAL', value: 'managed-identity' }
  { name: 'SIMGATE_OUTPUTS_URL', value: storage.outputs.blobEndpoint }
  { name: 'SIMGATE_JOBS_TABLE', value: storage.outputs.jobsTableName }
  { name: 'SIMGATE_STUDIES_TABLE', value: storage.outputs.studiesTableName }
  // Telemetry, sent with the identity (local authentication is off on the component).
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: monitoring.outputs.connectionString }
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identity.outputs.clientId};Authorization=AAD' }
  // Users' tokens.
  { name: 'AUTH_ISSUER', value: authIssuer }
  { name: 'AUTH_AUDIENCE', value: authAudience }
  { name: 'AUTH_JWKS', value: authJwks }
  { name: 'AUTH_ADMIN_ROLE', value: authAdminRole }
  { name: 'AUTH_LEEWAY_SECONDS', value: string(authLeewaySeconds) }
  { name: 'AUTH_REQUIRED_SCOPE', value: authRequiredScope }
  { name: 'AUTH_UI_CLIENT_ID', value: uiClientId }
  { name: 'AUTH_UI_AUTHORITY', value: uiAuthority }
  { name: 'AUTH_UI_SCOPE', value: uiScope }
  // Jobs.
  { name: 'SIMGATE_CALLBACK_URL', value: appUrl }
  { name: 'SIMGATE_TARGETS', value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${targetsSecretName})' }
  { name: 'SIMGATE_DOWNLOAD_MINUTES', value: string(downloadMinutes) }
  { name: 'SIMGATE_UPLOAD_MINUTES', value: string(uploadMinutes) }
  { name: 'SIMGATE_RECONCILE_SCHEDULE', value: reconcileSchedule }
  { name: 'SIMGATE_LOST_AFTER_MINUTES', value: string(lostAfterMinutes) }
  { name: 'SIMGATE_RESEND_AFTER_SECONDS', value: string(resendAfterSeconds) }
  { name: 'SIMGATE_STUDY_MAX_RUNS', value: string(studyMaxRuns) }
], sshKeySettings)

// The targets' private keys: each the app setting a target's key_setting names, resolved from Key Vault.
var sshKeySettings = [for key in sshKeys: {
  name: key.setting
  value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${key.secret})'
}]

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    name: functionAppName
    planName: 'plan-${name}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    blobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    appSettings: appSettings
    publicUrl: appUrl
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    zoneRedundant: zoneRedundant
  }
  // The identity's roles first: the host reaches storage and Key Vault with them as soon as the app starts.
  dependsOn: [
    roles
  ]
}

// ---- Outputs: what the code, the docs and the operator need ----

output functionAppName string = functionApp.outputs.name
output functionAppUrl string = 'https://${functionApp.outputs.defaultHostName}'
output callbackUrl string = appUrl
output storageAccountName string = storage.outputs.name
output blobEndpoint string = storage.outputs.blobEndpoint
output deploymentContainerName string = storage.outputs.deploymentContainerName
output jobsTableName string = storage.outputs.jobsTableName
output dispatchQueueName string = storage.outputs.dispatchQueueName
output dispatchPoisonQueueName string = storage.outputs.dispatchPoisonQueueName
output keyVaultName string = keyVault.outputs.name
output keyVaultUri string = keyVault.outputs.uri
output targetsSecretName string = targetsSecretName
output identityClientId string = identity.outputs.clientId
output identityPrincipalId string = identity.outputs.principalId
output appInsightsName string = monitoring.outputs.appInsightsName
