// The Function App on a Flex Consumption plan: Linux, Python 3.11, its package deployed from a blob container
// with the user-assigned identity (no storage key anywhere), Key Vault references resolved with the same identity.
// Flex Consumption takes the runtime from functionAppConfig, so FUNCTIONS_WORKER_RUNTIME and friends must not be
// app settings (the platform refuses them).

@description('Function App name (also the first label of its default host name).')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Blob endpoint of the storage account, ending in "/".')
param blobEndpoint string

@description('Container the platform deploys the app package from.')
param deploymentContainerName string

@description('App settings, as name/value pairs (main.bicep builds them).')
param appSettings array

@description('SIMGATE_PUBLIC_URL: the app\'s public base URL, which the links it builds (Link, Location) start from; its default host name unless set (e.g. a custom domain).')
param publicUrl string = ''

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

@description('Spread instances over availability zones (keeps at least two always-ready instances per function group, billed).')
param zoneRedundant bool = false

// The settings only this module knows: the app's own address (the links it builds never come from a request's Host).
var ownSettings = [
  { name: 'SIMGATE_PUBLIC_URL', value: empty(publicUrl) ? 'https://${name}.azurewebsites.net' : publicUrl }
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    // checkov:skip=CKV_AZURE_225: zone redundancy is the parameter zoneRedundant, on in the prod parameters file; on Flex Consumption it keeps at least two always-ready instances per function group billed around the clock, so dev leaves it off. Checkov reads the parameter's name, not its value.
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    // checkov:skip=CKV_AZURE_222: a public API by design: scientists' browsers and the simulators' job wrappers (on HPC networks of their own) call it from the internet; every /job route checks an Entra ID bearer token and the simulator route a per-job token, in the function.
    // checkov:skip=CKV_AZURE_17: no client certificates: callers are browsers and job wrappers that authenticate with bearer tokens (Entra ID, or the job's own token), which the functions validate.
    // checkov:skip=CKV_AZURE_212: Flex Consumption has no fixed instance count to keep for failover: it scales out per function from zero (and zoneRedundant spreads instances over zones).
    // checkov:skip=CKV_AZURE_213: the platform health check is not available on Flex Consumption; Application Insights records every request and failure instead.
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    keyVaultReferenceIdentity: identityId
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: concat(appSettings, ownSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No basic-auth publishing: Core Tools and the Azure CLI publish with the operator's Entra ID token.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
