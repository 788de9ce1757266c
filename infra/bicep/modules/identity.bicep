// The Function App's user-assigned managed identity: the one principal that reaches storage, Key Vault and
// Application Insights. User-assigned (not system-assigned) so its roles exist before the app first starts, and
// so the deployment storage, the host (AzureWebJobsStorage__clientId) and the code (AZURE_CLIENT_ID) name it.

@description('Name of the user-assigned identity.')
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
